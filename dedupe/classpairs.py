"""Kept verdicts stored once for every pair of feature classes, and read back as pairs of records.

The copies of one book at many members have equal features but for the source: one feature class
(``blockstore.feature_class``), equal blocking keys, so the same blocks.  Every record of class C meets every
record of class D in the block that scores one of their pairs, and ``compare`` reads nothing else but the
two sources, which only tell a match from a member's own duplicate.  So one row here stands for all those
pairs of records: at 200k member records of the synthetic consortium, 2,203,312 kept pairs of records were
232,850 pairs of classes, and with them stored so (and blocks of copies scored a class at a time) a full
pass cost 0.74× the CPU it did with a row a pair of records to insert, index and read back (BENCHMARKS.md).

A row ``(a, b)`` stands for the pairs ``(x, y)`` with ``x`` in class ``a``, ``y`` in class ``b`` and
``x < y`` in record order (``compare`` reads its two sides in that order, so a pair of classes has a row
for each order its records come in); ``decision`` is ``match`` (each record pair a match, or a member's
own duplicate when both records come from one member) or ``veto``.  A verdict depends on the two feature
sets alone, so a row never goes stale: a record that changes leaves its class and joins another, and a row
whose classes hold no record stands for no pair until one comes back (a full pass empties the table).  Pairs
a split block's title windows score are not closed over classes (they pair records by their place in title
order) and stay rows of records (``evidence.dedupe_pairs``).
"""
from __future__ import annotations

import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from itertools import chain, islice
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text, or_, select
from sqlalchemy.engine import Connection, Engine

from storage.db import chunks, insert_rows, metadata, stream
from storage.jsoncodec import dumps

from .blockstore import class_record_ids, members_of

RecordKey = tuple[str, str]
#: (a, b, decision, rule, score) — what :class:`dedupe.evidence.EvidenceStore` hands out for a pair of records.
Row = tuple[RecordKey, RecordKey, str, str, float]

dedupe_class_pairs = Table(
    "dedupe_class_pairs",
    metadata,
    Column("a_class", BigInteger, primary_key=True, autoincrement=False),
    Column("b_class", BigInteger, primary_key=True, autoincrement=False),
    Column("decision", String(16), nullable=False),   # match | veto
    Column("rule", String(40), nullable=False),
    Column("score", Float, nullable=False),
    Column("evidence", Text, nullable=False),
)
#: Rows by their b class (the pairs touching a record of that class).  A full pass drops it while it inserts
#: and builds it after scoring, like the record pairs' b-side index.
BY_B_CLASS = Index("ix_dedupe_class_pairs_b", dedupe_class_pairs.c.b_class)
_COLUMNS = ("a_class", "b_class", "decision", "rule", "score", "evidence")


class ClassPair(NamedTuple):
    """One kept verdict for a pair of classes, as scoring hands it on (``decision``: match or veto)."""

    a: int
    b: int
    decision: str
    rule: str
    score: float
    evidence: dict


def store(conn: Connection, pairs: list[ClassPair]) -> None:
    """Inside the caller's transaction: insert ``pairs`` in key order, skipping rows already stored (an
    incremental pass meets classes it scored before; a re-run partition job its own rows)."""
    texts: dict[int, str] = {}      # pairs with one verdict share one evidence dict (``verdicts.Verdicts``)
    rows = [(a, b, decision, rule, score, texts.get(id(evidence)) or texts.setdefault(id(evidence), dumps(evidence)))
            for a, b, decision, rule, score, evidence in sorted(pairs, key=itemgetter(0, 1))]
    insert_rows(conn, dedupe_class_pairs, _COLUMNS, rows, skip_existing=True)


def by_class(classes: Mapping[RecordKey, int]) -> dict[int, list[RecordKey]]:
    """``classes`` turned round: each class's records (of those given), in record order."""
    out: dict[int, list[RecordKey]] = defaultdict(list)
    for r in sorted(classes):
        out[classes[r]].append(r)
    return out


def rows_touching(conn: Connection, classes: Collection[int], decisions: Collection[str], evidence: bool = False,
                  both: bool = False) -> list[tuple]:
    """The rows with a class among ``classes`` on either side (``both``: on both sides) and a stored decision
    among ``decisions``: (a, b, decision, rule, score[, evidence])."""
    p = dedupe_class_pairs.c
    cols = [p.a_class, p.b_class, p.decision, p.rule, p.score] + ([p.evidence] if evidence else [])
    wanted, found = set(classes), {}
    for chunk in chunks(sorted(wanted)):
        sides = p.a_class.in_(chunk) if both else or_(p.a_class.in_(chunk), p.b_class.in_(chunk))
        for row in conn.execute(select(*cols).where(sides, p.decision.in_(list(decisions)))).all():
            if not both or row[1] in wanted:
                found[(row[0], row[1])] = tuple(row)
    return list(found.values())


def all_rows(conn: Connection, decisions: Collection[str]) -> list[tuple]:
    """Every row with a stored decision among ``decisions``: (a, b, decision, rule, score)."""
    p = dedupe_class_pairs.c
    return [tuple(r) for r in conn.execute(select(p.a_class, p.b_class, p.decision, p.rule, p.score)
                                           .where(p.decision.in_(list(decisions)))).all()]


def stored_decisions(decisions: Iterable[str]) -> list[str]:
    """The decisions of rows that can give pairs with one of ``decisions`` (an internal pair is a match row's)."""
    wanted = set(decisions)
    return [d for d in ("match", "veto") if d in wanted or (d == "match" and "internal" in wanted)]


def expand(rows: Iterable[tuple], members: Mapping[int, list[RecordKey]], decisions: Collection[str]
           ) -> Iterator[tuple]:
    """The pairs of records ``rows`` stand for among ``members`` (each class's records, sorted), with a
    decision among ``decisions``: (x, y, decision, rule, score[, whatever else the row carries])."""
    want_match, want_internal, want_veto = "match" in decisions, "internal" in decisions, "veto" in decisions
    for row in rows:
        xs, ys = members.get(row[0]), members.get(row[1])
        if not xs or not ys:
            continue
        veto, rest = row[2] == "veto", row[3:]
        if veto and not want_veto:
            continue
        for x in xs:
            for y in ys[bisect_right(ys, x):]:
                if veto:
                    yield (x, y, "veto", *rest)
                elif x[0] == y[0]:
                    if want_internal:
                        yield (x, y, "internal", *rest)
                elif want_match:
                    yield (x, y, "match", *rest)


def clear(conn: Connection) -> None:
    """Inside the caller's transaction: drop every row (a full pass scores every pair again)."""
    conn.execute(dedupe_class_pairs.delete())


def internal_pairs(engine: Engine, source: str | None) -> Iterator[tuple]:
    """Every pair of one member's records that a match row stands for (that member's own duplicates), with
    the evidence text: (a, b, "internal", rule, score, evidence).  The match rows are streamed and expanded a
    chunk at a time over their classes' records, so nothing holds them all."""
    p = dedupe_class_pairs.c
    rows = stream(engine, select(p.a_class, p.b_class, p.decision, p.rule, p.score, p.evidence)
                  .where(p.decision == "match"))
    while chunk := [tuple(r) for r in islice(rows, 20_000)]:
        with engine.connect() as conn:
            members = members_of(conn, {c for row in chunk for c in row[:2]})
        for pair in expand(chunk, members, ("internal",)):
            if source is None or pair[0][0] == source:
                yield pair


def matched_ids(engine: Engine) -> Iterator[tuple[int, int]]:
    """``records.id`` pairs that join every record a match row stands for into one component (a full pass's
    union-find): each record with the first of its feature class, then the first records of each match row's
    two classes.  Streamed both: what is held is each class's number and first record (12 bytes a class), not
    the rows.  A component may come out larger than its accepted pairs make it (copies that never matched,
    or only as one member's duplicates), which clustering it whole makes no difference to."""
    p = dedupe_class_pairs.c
    classes, firsts = array.array("q"), array.array("i")
    last = first = None
    for cls, rid in class_record_ids(engine):
        if cls != last:
            classes.append(cls)
            firsts.append(rid)
            last, first = cls, rid
        else:
            yield first, rid
    known, first_of = np.frombuffer(classes, dtype=np.int64), np.frombuffer(firsts, dtype=np.int32)
    rows = stream(engine, select(p.a_class, p.b_class).where(p.decision == "match", p.a_class != p.b_class))
    while chunk := list(islice(rows, 100_000)):   # rows flattened: numpy probing each row object cost more
        pairs = np.fromiter(chain.from_iterable(chunk), dtype=np.int64, count=2 * len(chunk)).reshape(-1, 2)
        yield from _firsts(pairs, known, first_of)


def _firsts(pairs: np.ndarray, known: np.ndarray, first_of: np.ndarray) -> Iterator[tuple[int, int]]:
    """The first records of both classes of each pair (rows n×2) whose two classes hold records."""
    if not len(known):
        return
    at = np.searchsorted(known, pairs).clip(0, len(known) - 1)
    held = (known[at] == pairs).all(axis=1)
    yield from zip(first_of[at[held, 0]].tolist(), first_of[at[held, 1]].tolist())
