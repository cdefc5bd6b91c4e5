"""Every live member record's features and blocking keys, stored so a batch of blocks is one query.

``dedupe_keys`` holds (key, record) for every blocking key but the signature
entries; ``dedupe_features`` holds each record's features and, beside them,
the same keys as one JSON list.  A dedupe pass asks for the sizes of the
blocks it scores, then for a batch of blocks at once: one indexed join gives
every member with its features and all its keys (which decide the block a
pair is scored in), so neither a full nor an incremental pass loads every
record, and a record met in a batch costs one row and one decode, not one
row per key.  Rows are written by :meth:`dedupe.evidence.EvidenceStore.stage`,
keys and features in the same transaction, so they always agree.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import Column, Index, Integer, String, Table, Text, and_, func, select
from sqlalchemy.engine import Connection, Engine

from storage.db import chunks, insert_rows, metadata, record_in, write_lock
from storage.jsoncodec import dumps, loads

from .features import SIGNATURE, Features

RecordKey = tuple[str, str]

dedupe_features = Table(
    "dedupe_features",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("data", Text, nullable=False),
    Column("block_keys", Text, nullable=False),    # JSON list: the record's rows in dedupe_keys
)

dedupe_keys = Table(
    "dedupe_keys",
    metadata,
    Column("key", String(), nullable=False),     # unbounded: a "words:" key carries whole words
    Column("source", String(64), nullable=False),
    Column("local_id", String(255), nullable=False),
)
#: Records by key (a block's members), one row a record and key.  A unique index, not a primary key, so a full
#: pass can drop it while it stages every record and build it once before scoring (:meth:`EvidenceStore.keyed`):
#: a sort instead of a random B-tree insert a key — 2.4M keys of 300k records: 31.2 CPU-s (140 s wall) into
#: the primary key's B-tree, 10.9 (40 s) into a plain table and an index built after (BENCHMARKS.md ``keys15``).
BY_KEY = Index("ix_dedupe_keys_key", dedupe_keys.c.key, dedupe_keys.c.source, dedupe_keys.c.local_id, unique=True)
#: Keys by record (an incremental pass's deletes).  A full pass drops it while it stages every record and builds
#: it once after scoring, like the pairs' b-side index (``dedupe.evidence``).
BY_RECORD = Index("ix_dedupe_keys_record", dedupe_keys.c.source, dedupe_keys.c.local_id)

#: A full pass's block walk, numbered (:meth:`BlockStore.plan_walk`): read a page at a time by position, so no
#: read lasts longer than one batch and the position a batch reaches is where an interrupted pass goes on.
dedupe_walk = Table(
    "dedupe_walk",
    metadata,
    Column("pos", Integer, primary_key=True, autoincrement=False),
    Column("key", String(), nullable=False),
)


def block_keys(keys: Iterable[str]) -> list[str]:
    """The keys a record is stored under: its blocking keys, once each, without the signature."""
    return [k for k in dict.fromkeys(keys) if not k.startswith(SIGNATURE)]


def replace_records(conn: Connection, records: Collection[RecordKey], features: Mapping[RecordKey, Features],
                    keys: Mapping[RecordKey, list[str]]) -> None:
    """Inside the caller's transaction: drop the rows of ``records``, store ``features`` and their ``keys``."""
    for table in (dedupe_features, dedupe_keys):
        for where in record_in(table.c.source, table.c.local_id, records):
            conn.execute(table.delete().where(where))
    stored = {r: block_keys(keys[r]) for r in features}
    insert_rows(conn, dedupe_features, ("source", "local_id", "data", "block_keys"), [
        (s, l, dumps(f), dumps(stored[(s, l)])) for (s, l), f in features.items()])
    insert_rows(conn, dedupe_keys, ("key", "source", "local_id"),   # in key order: the B-tree page after page
                sorted((k, s, l) for (s, l), ks in stored.items() for k in ks))


def clear_records(conn: Connection) -> None:
    """Inside the caller's transaction: drop every record's features and keys, and the block walk planned over
    them (a full pass restages them all)."""
    conn.execute(dedupe_walk.delete())
    conn.execute(dedupe_keys.delete())
    conn.execute(dedupe_features.delete())


def stored_features(engine: Engine, records: Iterable[RecordKey]) -> dict[RecordKey, Features]:
    """The stored features of ``records`` (explain, tests); a pass reads them with its blocks instead."""
    out: dict[RecordKey, Features] = {}
    f = dedupe_features.c
    with engine.connect() as conn:
        for where in record_in(f.source, f.local_id, records):
            rows = conn.execute(select(f.source, f.local_id, f.data).where(where))
            out.update(((s, l), loads(data)) for s, l, data in rows)
    return out


@dataclass
class Batch:
    """A batch of blocks to score: the members of each (record order), their features and all their keys."""

    members: dict[str, list[RecordKey]]
    features: dict[RecordKey, Features]
    keys: dict[RecordKey, frozenset[str]]


def to_score(members: Mapping[str, list[RecordKey]],
             changed: Collection[RecordKey] | None) -> dict[str, list[RecordKey]]:
    """The blocks worth scoring: two or more records, one of them changed (None: every record changed)."""
    return {k: rs for k, rs in members.items()
            if len(rs) > 1 and (changed is None or any(r in changed for r in rs))}


class BlockStore:
    """Block members, block sizes and record keys, answered from ``dedupe_keys``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def oversized(self, keys: Collection[str] | None, over: int) -> dict[str, int]:
        """The blocks among ``keys`` (None: every block) with more than ``over`` records, and their sizes."""
        count = func.count().label("n")
        q = select(dedupe_keys.c.key, count).group_by(dedupe_keys.c.key).having(count > over)
        with self.engine.connect() as conn:
            if keys is None:
                return {k: int(n) for k, n in conn.execute(q)}
            out: dict[str, int] = {}
            for chunk in chunks(sorted(keys)):
                out.update((k, int(n)) for k, n in conn.execute(q.where(dedupe_keys.c.key.in_(chunk))))
            return out

    def plan_walk(self, then: Callable[[Connection], None] | None = None) -> int:
        """Number every key two or more records carry, in the order of each block's first member, into
        ``dedupe_walk`` (one INSERT … SELECT: the database sorts, on disk when it must); ``then`` runs in the
        same transaction.  How many keys there are.

        The copies of one book share most of their blocks and are the first member of most of them,
        so one batch holds most of a record's blocks and its features are decoded about once: in key
        order a record came back in ~4.9 batches, in this order ~1.4 (LoC, 39,582 member records).
        Stored rather than streamed: a read open for the whole scoring kept SQLite from checkpointing, and
        the WAL grew past the database itself (27.8 GB at 5M member records, BENCHMARKS.md).
        """
        k = dedupe_keys.c
        numbered = select(func.row_number().over(order_by=(func.min(k.source + "/" + k.local_id), k.key)),
                          k.key).group_by(k.key).having(func.count() > 1)
        with self._lock, self.engine.begin() as conn:
            conn.execute(dedupe_walk.delete())
            planned = conn.execute(dedupe_walk.insert().from_select(["pos", "key"], numbered)).rowcount
            if then:
                then(conn)
            return planned

    def walk(self, size: int, after: int = 0) -> Iterator[tuple[int, list[str]]]:
        """The planned walk's keys after position ``after``, ``size`` at a time, each page with its last
        position: one short read a page, nothing held between pages."""
        w = dedupe_walk.c
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(w.pos, w.key).where(w.pos > after).order_by(w.pos).limit(size)).all()
            if not rows:
                return
            after = rows[-1][0]
            yield after, [key for _, key in rows]

    def batch(self, keys: Iterable[str], changed: Collection[RecordKey] | None) -> Batch:
        """The blocks in ``keys`` worth scoring (:func:`to_score`), read in one joined query a chunk of keys.

        A record's features and keys are decoded once a batch, whatever the number of its blocks in it,
        and only when one of those blocks is scored.
        """
        k, f = dedupe_keys.c, dedupe_features.c
        joined = dedupe_keys.join(dedupe_features, and_(f.source == k.source, f.local_id == k.local_id))
        members: dict[str, list[RecordKey]] = defaultdict(list)
        raw: dict[RecordKey, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                rows = conn.execute(select(k.key, k.source, k.local_id, f.data, f.block_keys).select_from(joined)
                                    .where(k.key.in_(chunk)).order_by(k.key, k.source, k.local_id)).all()
                for key, s, l, data, record_keys in rows:
                    members[key].append((s, l))
                    raw[(s, l)] = (data, record_keys)
        members = to_score(members, changed)
        records = {r for rs in members.values() for r in rs}
        return Batch(members, {r: loads(raw[r][0]) for r in records},
                     {r: frozenset(loads(raw[r][1])) for r in records})

    def keys_of(self, records: Iterable[RecordKey]) -> dict[RecordKey, frozenset[str]]:
        """The stored blocking keys of each of ``records`` (the blocks an incremental pass scores)."""
        out: dict[RecordKey, frozenset[str]] = {}
        with self.engine.connect() as conn:
            for where in record_in(dedupe_features.c.source, dedupe_features.c.local_id, records):
                rows = conn.execute(select(dedupe_features.c.source, dedupe_features.c.local_id,
                                           dedupe_features.c.block_keys).where(where))
                out.update(((s, l), frozenset(loads(ks))) for s, l, ks in rows)
        return out
