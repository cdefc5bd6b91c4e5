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
from hashlib import blake2b

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, func, select, tuple_
from sqlalchemy.engine import Connection, Engine

from normaliser.store import record_join
from storage.db import chunks, insert_rows, make_engine, metadata, record_in, rows_in, stream, write_lock
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
    Column("class_id", BigInteger, nullable=False, server_default="0"),   # :func:`feature_class` of ``data``
)
#: Records by feature class (the records a pair of classes stands for, ``dedupe.classpairs``).  A full pass drops
#: it while it stages every record and builds it once after scoring, like the keys' record index.
BY_CLASS = Index("ix_dedupe_features_class", dedupe_features.c.class_id, dedupe_features.c.source,
                 dedupe_features.c.local_id)

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


def feature_class(data: str) -> int:
    """The class of a stored features text: records whose features are equal, the source aside (the copies of
    one book at many members), share it, and ``compare`` gives every pair of two classes one verdict.  A 64-bit
    hash, signed to fit a BIGINT: two texts sharing one by chance among 10M classes has odds of ~3 in a million."""
    return int.from_bytes(blake2b(data.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def shared_text(features: Features) -> str:
    """The stored text of a record's features: everything but the source, which the row keeps apart."""
    return dumps({k: v for k, v in features.items() if k != "src"})


def replace_records(conn: Connection, records: Collection[RecordKey], features: Mapping[RecordKey, Features],
                    keys: Mapping[RecordKey, list[str]]) -> None:
    """Inside the caller's transaction: drop the rows of ``records``, store ``features`` and their ``keys``."""
    for table in (dedupe_features, dedupe_keys):
        for where in record_in(table.c.source, table.c.local_id, records):
            conn.execute(table.delete().where(where))
    stored = {r: block_keys(keys[r]) for r in features}
    texts = {r: shared_text(f) for r, f in features.items()}
    insert_rows(conn, dedupe_features, ("source", "local_id", "data", "block_keys", "class_id"), [
        (s, l, text, dumps(stored[(s, l)]), feature_class(text)) for (s, l), text in texts.items()])
    insert_rows(conn, dedupe_keys, ("key", "source", "local_id"),   # in key order: the B-tree page after page
                sorted((k, s, l) for (s, l), ks in stored.items() for k in ks))


def clear_records(conn: Connection) -> None:
    """Inside the caller's transaction: drop every record's features and keys, and the block walk planned over
    them (a full pass restages them all)."""
    conn.execute(dedupe_walk.delete())
    conn.execute(dedupe_keys.delete())
    conn.execute(dedupe_features.delete())


def any_stored(conn: Connection, after: int, upto: int) -> bool:
    """Whether features are stored for any record whose ``seq`` is in ``(after, upto]`` (a staging partition
    run before): one look-up of the features' primary key a record of the range until one is found."""
    f = dedupe_features.c
    joined, r = record_join(dedupe_features, f.source, f.local_id)
    return conn.execute(select(f.source).select_from(joined).where(r.seq > after, r.seq <= upto).limit(1)
                        ).first() is not None


def already_stored(conn: Connection, keys: Collection[RecordKey]) -> set[RecordKey]:
    """Those of ``keys`` whose features are stored (by a run of a staging partition before this one)."""
    return {(s, l) for s, l in rows_in(conn, dedupe_features, ("source", "local_id"), keys)}


def stored_features(engine: Engine, records: Iterable[RecordKey]) -> dict[RecordKey, Features]:
    """The stored features of ``records`` (explain, tests); a pass reads them with its blocks instead."""
    out: dict[RecordKey, Features] = {}
    f = dedupe_features.c
    with engine.connect() as conn:
        for where in record_in(f.source, f.local_id, records):
            rows = conn.execute(select(f.source, f.local_id, f.data).where(where))
            out.update(((s, l), with_source(s, loads(data))) for s, l, data in rows)
    return out


def classes_of(conn: Connection, records: Iterable[RecordKey]) -> dict[RecordKey, int]:
    """The feature class of each of ``records`` that has stored features."""
    f = dedupe_features.c
    out: dict[RecordKey, int] = {}
    for where in record_in(f.source, f.local_id, records):
        out.update(((s, l), c) for s, l, c in conn.execute(select(f.source, f.local_id, f.class_id).where(where)))
    return out


def class_join(left, source_col, local_col):
    """``left`` outer-joined to the features rows its (source, local id) columns name, and their class column
    (None for a record without stored features): another store's query then reads a record's class in the
    same row (``members.member_rows``), as ``normaliser.store.record_join`` gives a record's id."""
    f = dedupe_features.c
    return left.outerjoin(dedupe_features, (f.source == source_col) & (f.local_id == local_col)), f.class_id


def all_classes(conn: Connection) -> dict[RecordKey, int]:
    """Every record's feature class (tests, reports: not for a pass)."""
    f = dedupe_features.c
    return {(s, l): c for s, l, c in conn.execute(select(f.source, f.local_id, f.class_id))}


def members_of(conn: Connection, classes: Collection[int]) -> dict[int, list[RecordKey]]:
    """The records of each of ``classes``, in record order (Python's: a database's collation may differ)."""
    f = dedupe_features.c
    out: dict[int, list[RecordKey]] = defaultdict(list)
    for chunk in chunks(sorted(classes)):
        for c, s, l in conn.execute(select(f.class_id, f.source, f.local_id).where(f.class_id.in_(chunk))):
            out[c].append((s, l))
    for records in out.values():
        records.sort()
    return out


def class_record_ids(engine: Engine) -> Iterator[tuple[int, int]]:
    """(feature class, ``records.id``) of every record with stored features, by class, streamed."""
    f = dedupe_features.c
    joined, r = record_join(dedupe_features, f.source, f.local_id)
    return stream(engine, select(f.class_id, r.id).select_from(joined).order_by(f.class_id))


def with_source(source: str, shared: Features) -> Features:
    """A record's features from its stored row: the features without ``src`` (what the copies of one book at
    many members share, stored so, see :meth:`BlockStore.batch`) and its source.  A row an older version wrote
    carries ``src`` already: the same value, in the same first place."""
    return {"src": source, **shared}


@dataclass
class Batch:
    """A batch of blocks to score: the members of each (record order), their features and all their keys."""

    members: dict[str, list[RecordKey]]
    features: dict[RecordKey, Features]
    keys: dict[RecordKey, frozenset[str]]
    classes: dict[RecordKey, int] | None = None    # :func:`feature_class` of each record (None: not stored)


def to_score(members: Mapping[str, list[RecordKey]],
             changed: Collection[RecordKey] | None) -> dict[str, list[RecordKey]]:
    """The blocks worth scoring: two or more records, one of them changed (None: every record changed)."""
    return {k: rs for k, rs in members.items()
            if len(rs) > 1 and (changed is None or any(r in changed for r in rs))}


def assemble(found: Mapping[str, list[RecordKey]], raw: Mapping[RecordKey, tuple[str, str, int]],
             changed: Collection[RecordKey] | None) -> Batch:
    """The :class:`Batch` of the blocks ``found`` (key → members) worth scoring, from their members' stored
    rows ``raw`` (features JSON, keys JSON, class), each distinct text decoded once."""
    members = to_score({key: [r for r in rs if r in raw] for key, rs in found.items()}, changed)
    texts: dict[str, Features] = {}
    key_sets: dict[str, frozenset[str]] = {}
    batch = Batch(members, {}, {}, {})
    for r in {r for rs in members.values() for r in rs}:
        data, record_keys, cls = raw[r]
        shared = texts.get(data) or texts.setdefault(data, loads(data))
        batch.features[r], batch.classes[r] = with_source(r[0], shared), cls
        batch.keys[r] = key_sets.get(record_keys) or key_sets.setdefault(record_keys, frozenset(loads(record_keys)))
    return batch


def _reopened(url: str) -> "BlockStore":
    return BlockStore(make_engine(url))


class BlockStore:
    """Block members, block sizes and record keys, answered from ``dedupe_keys``."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def __reduce__(self) -> tuple:
        """Pickled as its database's URL (password included: it goes to this pass's own scoring workers), so
        a worker process opens an engine of its own — an engine and its pooled connections never cross a
        process."""
        return _reopened, (self.engine.url.render_as_string(hide_password=False),)

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
        """The blocks in ``keys`` worth scoring (:func:`to_score`), read in two queries a chunk of keys: the
        members of each block (from the key index alone), then each member's features and keys once.

        One join of keys and features returned a record's features once for each of its blocks in the chunk
        (most of them: see :meth:`plan_walk`), ~2.8 rows of text a record.  A record's features and keys are
        decoded once a batch, and only when one of its blocks is scored; and a stored text once a batch,
        whatever the number of its records: the copies of one book at many members have equal features but
        for the source, which the row keeps apart (:func:`replace_records`), so they share one decode and one
        stored class (:func:`feature_class`: what ``verdicts.Verdicts`` remembers verdicts by and what a pair of
        classes is stored under).
        """
        k, f = dedupe_keys.c, dedupe_features.c
        found: dict[str, list[RecordKey]] = defaultdict(list)
        raw: dict[RecordKey, tuple[str, str, int]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                for key, s, l in conn.execute(select(k.key, k.source, k.local_id).where(k.key.in_(chunk))
                                              .order_by(k.key, k.source, k.local_id)).all():
                    found[key].append((s, l))
                holders = select(k.source, k.local_id).where(k.key.in_(chunk))
                raw.update(((s, l), (data, record_keys, cls)) for s, l, data, record_keys, cls in conn.execute(
                    select(f.source, f.local_id, f.data, f.block_keys, f.class_id)
                    .where(tuple_(f.source, f.local_id).in_(holders))).all())
        return assemble(found, raw, changed)

    def keys_of(self, records: Iterable[RecordKey]) -> dict[RecordKey, frozenset[str]]:
        """The stored blocking keys of each of ``records`` (the blocks an incremental pass scores)."""
        out: dict[RecordKey, frozenset[str]] = {}
        with self.engine.connect() as conn:
            for where in record_in(dedupe_features.c.source, dedupe_features.c.local_id, records):
                rows = conn.execute(select(dedupe_features.c.source, dedupe_features.c.local_id,
                                           dedupe_features.c.block_keys).where(where))
                out.update(((s, l), frozenset(loads(ks))) for s, l, ks in rows)
        return out
