"""Stored match evidence: each member record's features, the scored pairs, the staff overrides.

* ``dedupe_features`` — one row per live member record: the features pairwise
  scoring reads (and the record's blocking keys, see ``blockstore``), so an
  incremental dedupe compares a changed record with its blocks without
  loading full records.
* ``dedupe_class_pairs`` (``classpairs``) and ``dedupe_pairs`` — every pair
  that was accepted (``match``), accepted but from one member (``internal``:
  the member's own duplicate, reported, not merged) or vetoed although the
  titles agreed (``veto``), with the rule and the feature scores: ``unioncat
  dedupe explain`` reads them, nothing is recomputed.  Most are stored once
  for a pair of feature classes (the copies of one book share one; a row
  never goes stale, a changed record moves to another class); the pairs of
  split blocks' title windows stay one row a pair of records, deleted and
  scored again when one of their records changes.  Both kinds are read back
  here as pairs of records.
* ``dedupe_overrides`` — librarians' ``never``/``always`` merge decisions,
  applied on every clustering pass, so they survive a full rebuild.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import Column, DateTime, Float, Index, Integer, String, Table, Text, and_, or_, select
from sqlalchemy.engine import Connection, Engine

from normaliser.store import record_join
from storage.db import chunks, get_value, insert_rows, metadata, next_value, record_in, stream, utcnow, write_lock
from storage.jsoncodec import dumps, loads

from . import classpairs
from .blockstore import (BY_CLASS, BY_KEY, BY_RECORD, all_classes, already_stored, any_stored, classes_of,
                         clear_records, members_of, replace_records, stored_features)
from .classpairs import BY_B_CLASS, ClassPair
from .features import Features

RecordKey = tuple[str, str]
Row = classpairs.Row

dedupe_pairs = Table(
    "dedupe_pairs",
    metadata,
    Column("a_source", String(64), primary_key=True),
    Column("a_id", String(255), primary_key=True),
    Column("b_source", String(64), primary_key=True),
    Column("b_id", String(255), primary_key=True),
    Column("decision", String(16), nullable=False),   # match | internal | veto
    Column("rule", String(40), nullable=False),
    Column("score", Float, nullable=False),
    Column("evidence", Text, nullable=False),
)
#: Pairs by their b side (an incremental pass's lookups).  A full pass drops it while it inserts every pair and
#: builds it again after (:meth:`EvidenceStore.restart`, :meth:`EvidenceStore.indexed`): one sort instead of a
#: random B-tree insert a pair (1.08M pairs at 100k member records: 13.8 → 9.0 CPU-s of inserts).
_BY_B = Index("ix_dedupe_pairs_b", dedupe_pairs.c.b_source, dedupe_pairs.c.b_id)
#: What a full pass drops while it inserts into empty tables and builds once after scoring (``restart``,
#: ``indexed``); the keys' key index is built before, when staging is done (``keyed``): scoring reads blocks by it.
_REBUILT = (_BY_B, BY_RECORD, BY_CLASS, BY_B_CLASS)
#: The two records of a pair, each looked up by its own index.
_SIDES = ((dedupe_pairs.c.a_source, dedupe_pairs.c.a_id), (dedupe_pairs.c.b_source, dedupe_pairs.c.b_id))


def _touching(keys: list[RecordKey]) -> Iterator:
    """WHERE clauses for the pairs with a or b among ``keys`` (sorted), ``CHUNK`` records a clause.

    One query a chunk, not one per side, member and chunk: a clustering batch of 5,000 records of 130
    members made ~260 queries.  Each OR term is still looked up by its own index (a, or b); a pair whose
    two records fall in two chunks comes back from both, so callers keep each pair once.
    """
    for chunk in chunks(keys):
        yield or_(*(where for side in _SIDES for where in record_in(*side, chunk)))


dedupe_overrides = Table(
    "dedupe_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),        # never | always
    Column("a_source", String(64), nullable=False),
    Column("a_id", String(255), nullable=False),
    Column("b_source", String(64), nullable=False),
    Column("b_id", String(255), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Counter bumped by every override change; the dedupe remembers the value it applied.
OVERRIDES_VERSION = "dedupe_overrides_version"
OVERRIDES_APPLIED = "dedupe_overrides_applied"


class Pair(NamedTuple):
    """One kept pair as ``compare`` scored it (a named tuple: a full pass makes one per kept pair, ~12 a record)."""

    a: RecordKey
    b: RecordKey
    decision: str
    rule: str
    score: float
    evidence: dict

    def as_dict(self) -> dict:
        return {"a": list(self.a), "b": list(self.b), "decision": self.decision, "rule": self.rule,
                "score": self.score, "features": self.evidence}


@dataclass(frozen=True)
class Override:
    id: int
    kind: str
    a: RecordKey
    b: RecordKey
    note: str

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "a": f"{self.a[0]}:{self.a[1]}", "b": f"{self.b[0]}:{self.b[1]}",
                "note": self.note}


def ordered(a: RecordKey, b: RecordKey) -> tuple[RecordKey, RecordKey]:
    return (a, b) if a <= b else (b, a)


class EvidenceStore:
    """Features, scored pairs and overrides of one catalogue database."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    # -- features --------------------------------------------------------------------
    def features(self, keys: Iterable[RecordKey]) -> dict[RecordKey, Features]:
        return stored_features(self.engine, keys)

    def stage(self, features: dict[RecordKey, Features], keys: dict[RecordKey, list[str]],
              removed: Iterable[RecordKey], fresh: bool = False,
              then: Callable[[Connection], None] | None = None, again: bool = False) -> None:
        """Store a batch of changed records' features and blocking keys, drop every pair touching them.

        One transaction a batch (a build stages its changes a few thousand records at a time, then
        scores their blocks): an interrupted incremental pass restages the same records on its rerun, a
        full pass goes on after the mark ``then`` writes in the same transaction (``fullpass``).
        ``fresh``: the store was emptied by :meth:`restart`, there is nothing to drop.  ``again`` (with
        ``fresh``: a full pass's staging partition, which may be a re-run): a record whose features are stored
        already is skipped — its keys came in the same transaction — so a re-run writes what the first run
        did not, and never removes what it did.
        """
        touched = [] if fresh else sorted(set(features) | set(removed))
        with self._lock, self.engine.begin() as conn:
            if then:       # first: a fence (``fullpass.fenced``) holds its row lock over the writes
                then(conn)
            if again and fresh:
                done = already_stored(conn, features)
                features = {r: f for r, f in features.items() if r not in done}
            for where in _touching(touched):
                conn.execute(dedupe_pairs.delete().where(where))
            replace_records(conn, touched, features, keys)

    def staged_between(self, after: int, upto: int) -> bool:
        """Whether any record whose ``seq`` is in ``(after, upto]`` has stored features (``blockstore.any_stored``)."""
        with self.engine.connect() as conn:
            return any_stored(conn, after, upto)

    def restart(self, then: Callable[[Connection], None] | None = None) -> None:
        """Drop every record's features, keys and scored pairs (overrides stay): a full pass stages and
        scores them all again, and inserting into empty tables beats a delete per record.  The keys' key index
        goes until :meth:`keyed`, the pairs' b-side index and the keys' record index until :meth:`indexed`.
        Interrupted, the full pass goes on where it stopped (``fullpass``) before any other pass runs, so no
        incremental pass runs without them.  ``then`` runs in the same transaction (the pass's mark)."""
        with self._lock, self.engine.begin() as conn:
            if then:
                then(conn)
            for index in (*_REBUILT, BY_KEY):
                index.drop(conn, checkfirst=True)
            conn.execute(dedupe_pairs.delete())
            classpairs.clear(conn)
            clear_records(conn)

    def keyed(self) -> None:
        """Build the blocking keys' key index :meth:`restart` dropped (after a full pass's staging)."""
        with self._lock, self.engine.begin() as conn:
            BY_KEY.create(conn, checkfirst=True)

    def indexed(self) -> None:
        """Build the indexes :meth:`restart` dropped (after a full pass's scoring)."""
        with self._lock, self.engine.begin() as conn:
            for index in (BY_KEY, *_REBUILT):
                index.create(conn, checkfirst=True)

    def add_pairs(self, pairs: list[Pair | ClassPair], again: bool = False,
                  then: Callable[[Connection], None] | None = None) -> None:
        """Store scored pairs (a block batch's worth: pairs of classes, and of records from split blocks'
        windows), one transaction, with the mark ``then`` writes (a full pass's place, ``fullpass``);
        ``again``: a pair of records already stored is skipped (a re-run partition job, a resumed pass, or two
        partitions' split blocks keeping one pair; a pair of classes already stored always is).  Inserted in key
        order: the primary key's B-tree is then written page after page, not at random (blocks come in the
        order of their first member, their pairs in no order of the key) — and two partitions inserting one
        pair lock rows in the same order."""
        records = [p for p in pairs if type(p) is Pair]
        classes = [p for p in pairs if type(p) is ClassPair] if len(records) < len(pairs) else []
        texts: dict[int, str] = {}      # pairs with equal features share one evidence dict (``verdicts.Verdicts``)
        rows = [(a[0], a[1], b[0], b[1], decision, rule, score,
                 texts.get(id(evidence)) or texts.setdefault(id(evidence), dumps(evidence)))
                for a, b, decision, rule, score, evidence in sorted(records, key=_by_records)]
        if not rows and not classes and not then:
            return
        with self._lock, self.engine.begin() as conn:
            insert_rows(conn, dedupe_pairs, ("a_source", "a_id", "b_source", "b_id", "decision", "rule", "score",
                                             "evidence"), rows, skip_existing=again)
            classpairs.store(conn, classes)
            if then:
                then(conn)

    # -- pairs -----------------------------------------------------------------------
    def all_pairs(self, decisions: Iterable[str] = ("match", "veto")) -> list[Row]:
        """(a, b, decision, rule, score) of every stored pair with one of ``decisions`` (no evidence).  Reads
        every record's class: for tests, reports and benchmarks, not for a pass."""
        decisions = list(decisions)
        p = dedupe_pairs.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(p.a_source, p.a_id, p.b_source, p.b_id, p.decision, p.rule, p.score)
                                .where(p.decision.in_(decisions)))
            records = [((a1, a2), (b1, b2), d, r, s) for a1, a2, b1, b2, d, r, s in rows]
            members = classpairs.by_class(all_classes(conn))
            expanded = classpairs.expand(classpairs.all_rows(conn, classpairs.stored_decisions(decisions)),
                                         members, decisions)
            return _union(records, expanded)

    def pairs_of(self, keys: Iterable[RecordKey], decisions: Iterable[str] = ("match", "veto")) -> list[Row]:
        """:meth:`all_pairs` restricted to the pairs touching ``keys`` (looked up by index: a and b), in no
        particular order: clustering sorts its edges itself (``cluster.cluster``), so sorting here is waste."""
        keys, decisions = sorted(set(keys)), list(decisions)
        cols = (dedupe_pairs.c.a_source, dedupe_pairs.c.a_id, dedupe_pairs.c.b_source, dedupe_pairs.c.b_id,
                dedupe_pairs.c.decision, dedupe_pairs.c.rule, dedupe_pairs.c.score)
        with self.engine.connect() as conn:
            records = {((a1, a2), (b1, b2), d, r, sc) for where in _touching(keys)
                       for a1, a2, b1, b2, d, r, sc in conn.execute(
                           select(*cols).where(where, dedupe_pairs.c.decision.in_(decisions))).all()}
            expanded = _class_pairs_touching(conn, keys, decisions)
        return _union(list(records), expanded)

    def pairs_within(self, keys: Iterable[RecordKey], decisions: Iterable[str] = ("match", "veto"),
                     classes: Mapping[RecordKey, int] | None = None) -> list[Row]:
        """:meth:`pairs_of` restricted to the pairs with both records among ``keys``: looked up by the a side
        alone, so each pair comes back once (:meth:`pairs_of` reads most twice, by a and by b).  For a batch of
        whole components (a full pass's clustering), where a pair reaching outside changes nothing.  Rows are
        fetched a query at a time (``all``): iterated, each row cost a driver ``fetchone`` through SQLAlchemy.
        The pairs of classes are expanded over the batch's own records of each class (``classes``: each
        record's, when the caller has them; looked up otherwise).  Pairs of records are looked for only when
        the table holds any: a query per member and chunk of the batch, for split blocks' windows alone."""
        inside, p, decisions = set(keys), dedupe_pairs.c, list(decisions)
        cols = (p.a_source, p.a_id, p.b_source, p.b_id, p.decision, p.rule, p.score)
        with self.engine.connect() as conn:
            records = [((a1, a2), b, d, r, sc) for where in record_in(p.a_source, p.a_id, inside)
                       for a1, a2, b1, b2, d, r, sc in conn.execute(
                           select(*cols).where(where, p.decision.in_(decisions))).all()
                       if (b := (b1, b2)) in inside] if _any_record_pairs(conn) else []
            members = classpairs.by_class(classes if classes is not None else classes_of(conn, inside))
            rows = classpairs.rows_touching(conn, members, classpairs.stored_decisions(decisions), both=True)
        return _union(records, classpairs.expand(rows, members, decisions))

    def pairs_touching(self, keys: Iterable[RecordKey]) -> list[Pair]:
        """Every stored pair touching ``keys``, with its evidence, in key order (explain, staff pages)."""
        keys = sorted(set(keys))
        decisions = ("match", "internal", "veto")
        with self.engine.connect() as conn:
            pairs = {(p.a, p.b): p for where in _touching(keys)
                     for p in map(_pair, conn.execute(select(dedupe_pairs).where(where)).mappings())}
            for a, b, decision, rule, score, text in _class_pairs_touching(conn, keys, decisions, evidence=True):
                pairs.setdefault((a, b), Pair(a, b, decision, rule, score, loads(text)))
        return [pairs[k] for k in sorted(pairs)]

    def internal_duplicates(self, source: str | None = None) -> list[Pair]:
        """Every pair of one member's own records that matched (reported, never merged), in key order."""
        q = select(dedupe_pairs).where(dedupe_pairs.c.decision == "internal")
        if source is not None:
            q = q.where(dedupe_pairs.c.a_source == source)
        with self.engine.connect() as conn:
            pairs = {(p.a, p.b): p for p in map(_pair, conn.execute(q).mappings().all())}
        for a, b, decision, rule, score, text in classpairs.internal_pairs(self.engine, source):
            pairs.setdefault((a, b), Pair(a, b, decision, rule, score, loads(text)))
        return [pairs[k] for k in sorted(pairs)]

    # -- overrides -------------------------------------------------------------------
    def add_override(self, kind: str, a: RecordKey, b: RecordKey, note: str = "") -> Override:
        """Record a never/always merge decision for two member records; replaces any earlier one for the pair."""
        if kind not in ("never", "always"):
            raise ValueError(f"override kind must be 'never' or 'always', not {kind!r}")
        if a == b:
            raise ValueError("an override needs two different records")
        a, b = ordered(a, b)
        with self._lock, self.engine.begin() as conn:
            conn.execute(dedupe_overrides.delete().where(_override_pair(a, b)))
            result = conn.execute(dedupe_overrides.insert().values(
                kind=kind, a_source=a[0], a_id=a[1], b_source=b[0], b_id=b[1], note=note, created_at=utcnow()))
            next_value(conn, OVERRIDES_VERSION)
            return Override(int(result.inserted_primary_key[0]), kind, a, b, note)

    def remove_override(self, a: RecordKey, b: RecordKey) -> int:
        a, b = ordered(a, b)
        with self._lock, self.engine.begin() as conn:
            n = conn.execute(dedupe_overrides.delete().where(_override_pair(a, b))).rowcount
            if n:
                next_value(conn, OVERRIDES_VERSION)
            return n

    def overrides(self) -> list[Override]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(dedupe_overrides).order_by(dedupe_overrides.c.id)).mappings().all()
        return [Override(r["id"], r["kind"], (r["a_source"], r["a_id"]), (r["b_source"], r["b_id"]), r["note"])
                for r in rows]

    def overrides_pending(self) -> bool:
        """Whether overrides changed since the last clustering pass applied them."""
        with self.engine.connect() as conn:
            return get_value(conn, OVERRIDES_VERSION) != get_value(conn, OVERRIDES_APPLIED)

    def overrides_version(self) -> int:
        with self.engine.connect() as conn:
            return get_value(conn, OVERRIDES_VERSION)


_by_records = itemgetter(0, 1)


def _override_pair(a: RecordKey, b: RecordKey):
    return and_(dedupe_overrides.c.a_source == a[0], dedupe_overrides.c.a_id == a[1],
                dedupe_overrides.c.b_source == b[0], dedupe_overrides.c.b_id == b[1])


def _pair(r) -> Pair:
    return Pair((r["a_source"], r["a_id"]), (r["b_source"], r["b_id"]), r["decision"], r["rule"], r["score"],
                loads(r["evidence"]))


def matched_ids(engine: Engine) -> Iterator[tuple[int, int]]:
    """``records.id`` pairs that join the records of every accepted pair, streamed (a full pass's components):
    the pairs of records stored as such, then those the pairs of classes stand for (``classpairs``)."""
    p = dedupe_pairs.c
    once, a = record_join(dedupe_pairs, p.a_source, p.a_id, "ra")
    both, b = record_join(once, p.b_source, p.b_id, "rb")
    yield from stream(engine, select(a.id, b.id).select_from(both).where(p.decision == "match"))
    yield from classpairs.matched_ids(engine)


def _class_pairs_touching(conn: Connection, keys: list[RecordKey], decisions: list[str] | tuple[str, ...],
                          evidence: bool = False) -> list[tuple]:
    """The pairs of records touching ``keys`` that the pairs of classes stand for (with the evidence text)."""
    mine = classes_of(conn, keys)
    rows = classpairs.rows_touching(conn, set(mine.values()), classpairs.stored_decisions(decisions), evidence)
    members = members_of(conn, {c for row in rows for c in row[:2]})
    inside = set(keys)
    return [pair for pair in classpairs.expand(rows, members, decisions) if pair[0] in inside or pair[1] in inside]


def _any_record_pairs(conn: Connection) -> bool:
    """Whether any pair is stored as a pair of records (split blocks' windows, an older store's rows)."""
    return conn.execute(select(dedupe_pairs.c.a_source).limit(1)).first() is not None


def _union(records: list[Row], expanded: Iterable[Row]) -> list[Row]:
    """The pairs stored as pairs of records and those expanded from pairs of classes, each pair once (a store
    an older version wrote holds pairs of records that its later incremental passes also store by class)."""
    if not records:
        return list(expanded)
    seen = {(a, b) for a, b, *_ in records}
    return records + [row for row in expanded if (row[0], row[1]) not in seen]
