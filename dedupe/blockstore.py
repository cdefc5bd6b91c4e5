"""The blocking keys of every live member record, stored one row a key and looked up by index.

``dedupe_keys`` holds (key, record) for every blocking key but the signature
entries: a dedupe pass asks it for the members of the blocks it scores, the
sizes of those blocks and the keys of the records in them — so neither a
full nor an incremental pass loads every record's keys, and the fixed cost of
an incremental pass does not grow with the catalogue.  Rows are written with
the features (:meth:`dedupe.evidence.EvidenceStore.stage`), in the same
transaction, so a record's keys and features always agree.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator

from sqlalchemy import Column, Index, String, Table, and_, func, select
from sqlalchemy.engine import Connection, Engine

from storage.db import metadata

from .features import SIGNATURE

RecordKey = tuple[str, str]

dedupe_keys = Table(
    "dedupe_keys",
    metadata,
    Column("key", String(), primary_key=True),     # unbounded: a "words:" key carries whole words
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
)
Index("ix_dedupe_keys_record", dedupe_keys.c.source, dedupe_keys.c.local_id)

#: Rows of one IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 400


def chunks(items: list, n: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def record_in(source_col, id_col, records: Iterable[RecordKey]) -> Iterator:
    """``(source, local_id) IN records`` as one ``source = ? AND local_id IN (...)`` clause per source and chunk.

    A row-value IN list makes SQLite scan the whole table; this form uses the (source, local_id) index.
    """
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, local_id in sorted(set(records)):
        by_source[source].append(local_id)
    for source, ids in by_source.items():
        for chunk in chunks(ids):
            yield and_(source_col == source, id_col.in_(chunk))


def replace_keys(conn: Connection, records: Collection[RecordKey], keys: dict[RecordKey, list[str]]) -> None:
    """Inside the caller's transaction: drop the keys of ``records``, insert ``keys`` (signature left out)."""
    for where in record_in(dedupe_keys.c.source, dedupe_keys.c.local_id, records):
        conn.execute(dedupe_keys.delete().where(where))
    rows = [dict(key=k, source=s, local_id=l) for (s, l), ks in keys.items()
            for k in dict.fromkeys(ks) if not k.startswith(SIGNATURE)]
    for chunk in chunks(rows, 5000):
        conn.execute(dedupe_keys.insert(), chunk)


class BlockStore:
    """Block members, block sizes and record keys, answered from ``dedupe_keys``."""

    def __init__(self, engine: Engine):
        self.engine = engine

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

    def shared_keys(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` keys after ``after`` (in order) that two or more records carry: the blocks to score."""
        q = (select(dedupe_keys.c.key).where(dedupe_keys.c.key > after).group_by(dedupe_keys.c.key)
             .having(func.count() > 1).order_by(dedupe_keys.c.key).limit(limit))
        with self.engine.connect() as conn:
            return [k for (k,) in conn.execute(q)]

    def members(self, keys: Iterable[str]) -> dict[str, list[RecordKey]]:
        """The records of each block in ``keys``, in record order."""
        out: dict[str, list[RecordKey]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                rows = conn.execute(select(dedupe_keys.c.key, dedupe_keys.c.source, dedupe_keys.c.local_id)
                                    .where(dedupe_keys.c.key.in_(chunk))
                                    .order_by(dedupe_keys.c.key, dedupe_keys.c.source, dedupe_keys.c.local_id))
                for k, s, l in rows:
                    out[k].append((s, l))
        return dict(out)

    def keys_of(self, records: Iterable[RecordKey]) -> dict[RecordKey, frozenset[str]]:
        """The stored blocking keys of each of ``records`` (what decides the block a pair is scored in)."""
        out: dict[RecordKey, set[str]] = defaultdict(set)
        with self.engine.connect() as conn:
            for where in record_in(dedupe_keys.c.source, dedupe_keys.c.local_id, records):
                rows = conn.execute(select(dedupe_keys.c.source, dedupe_keys.c.local_id, dedupe_keys.c.key)
                                    .where(where))
                for s, l, k in rows:
                    out[(s, l)].add(k)
        return {r: frozenset(ks) for r, ks in out.items()}
