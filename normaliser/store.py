"""The store of normalised records (one row per member record).

Each row carries the JSON of a :class:`~normaliser.model.Record` and a change
sequence (counter ``record_seq``) so dedupe can pick up exactly what changed.
"""
from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import NamedTuple

from sqlalchemy import (
    Boolean, Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint, and_, bindparam, case, func,
    select,
    update,
)
from sqlalchemy.engine import Engine

from storage.db import bound, insert_rows, metadata, next_value, rows_in, utcnow, write_lock
from storage.jsoncodec import dumps, loads

from .model import Classification, Contributor, Holding, ParallelField, Record

records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("raw_seq", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("data", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Kept beside the JSON so the dedupe stage never decodes a holdings record (MFHD): its kind, its 004 and
    # its Holding rows are all the stage and the merge need of it.
    Column("kind", String(16), nullable=False, default="bibliographic", server_default="bibliographic"),
    Column("holdings_of", String(255), nullable=False, default="", server_default=""),
    Column("holdings", Text, nullable=True),
    UniqueConstraint("source", "local_id", name="uq_records_source_local"),
)
Index("ix_records_seq", records.c.seq)

RECORD_SEQ = "record_seq"


def record_join(left, source_col, local_col, name: str | None = None):
    """``left`` joined to the records its (source, local id) columns name, and those records' columns.

    Another store's rows can then carry a record's integer id (``records.id``, compact where a
    (source, local id) pair is two strings) without reaching for this module's table; ``name`` aliases
    the records table, to join it twice."""
    r = records.alias(name) if name else records
    return left.join(r, and_(r.c.source == source_col, r.c.local_id == local_col)), r.c


def max_record_id(engine: Engine) -> int:
    """The highest ``records.id`` given so far (0 in an empty store)."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(records.c.id))).scalar() or 0


class Stored(NamedTuple):
    """A record ready for the store: its JSON and the columns kept beside it (see :func:`stored`), in the
    columns' order.

    A tuple, not a dataclass: a normaliser worker sends one back for every record, and unpickling a frozen
    dataclass cost ~7 µs a record in the stage's parent, a named tuple ~1 (measured on 1,000 records)."""

    data: str
    kind: str = "bibliographic"
    holdings_of: str = ""
    holdings: str | None = None     # JSON list of Holding rows, for holdings records only


def stored(record: Record) -> Stored:
    """Serialise ``record`` once (in a normaliser worker process) with its kind, 004 and holdings rows.

    orjson writes the dataclasses themselves, fields in class order — the JSON of :meth:`Record.to_dict`
    without building that dict (~8 against ~14–25 µs a record; ``tests/test_record_decode.py`` pins
    that both give the same bytes).
    """
    held = None
    if record.kind == "holdings":
        held = dumps(record.holdings, lambda: [dict(h.__dict__) for h in record.holdings])
    return Stored(dumps(record, record.to_dict), record.kind, record.holdings_of, held)


_FIELD_ORDER = [f.name for f in fields(Record)]


def _parts(cls: type) -> Callable[[list[dict]], list]:
    """What makes a list of ``cls`` (a contributor, a holding…) from its stored dicts, as :func:`decode` makes the
    record: a dict holding every field in field order becomes the part's attributes as it is, without the
    dataclass ``__init__`` (~3 µs a record of its ~8 parts; a full build decodes every member record twice and
    every entry once); any other dict goes through ``__init__``."""
    names = [f.name for f in fields(cls)]
    new = object.__new__

    def made(items: list[dict]) -> list:
        out = []
        for item in items:
            if list(item) == names:
                part = new(cls)
                part.__dict__.update(item)
            else:
                part = cls(**item)
            out.append(part)
        return out
    return made


_PARTS = [("contributors", _parts(Contributor)), ("classifications", _parts(Classification)),
          ("parallel", _parts(ParallelField)), ("holdings", _parts(Holding))]


def decode(data: str) -> Record:
    """The :class:`Record` stored as ``data`` (JSON written by :meth:`Record.to_dict`).

    A full dedupe decodes every member record twice (staging and merging) and
    ``Record.from_dict`` — a copy of the dict, a filter over it and a 50-argument
    dataclass ``__init__`` — cost more than ``json.loads`` itself (~32 against
    ~26 µs a record).  JSON this store wrote holds every field in field order,
    so its values become the record's attributes as they are (~5 µs; the same
    attributes in the same order, so ``to_dict`` gives the same JSON back);
    anything else (rows from an older model) goes through ``from_dict``.
    """
    fields_ = loads(data)
    if list(fields_) != _FIELD_ORDER:
        return Record.from_dict(fields_)
    for name, made in _PARTS:
        fields_[name] = made(fields_[name])
    record = object.__new__(Record)
    # One update in field order: 14 against 18 µs a record for the loop of setattr it replaced, for ~0.7 KB
    # more a record (6.0 → 6.7 KB, tracemalloc); assigning ``__dict__`` whole would cost ~3 KB more.
    record.__dict__.update(fields_)
    return record


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector while a batch of records is decoded (and merged).

    A decoded record is a tree of ~30 fresh lists and dicts; with the batch's
    records piling up, the collector's passes over them (never finding a
    cycle: records hold none) cost more than the decoding itself — ~75 against
    ~15 µs a record, measured on the 20k store.  Reference counting still frees
    everything at once; only cycles wait for the collector to come back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _as_stored(record: Record | Stored | str) -> Stored:
    """The stored columns of a record given as a Record, a :class:`Stored` or (older callers) bare JSON."""
    if isinstance(record, Stored):
        return record
    if isinstance(record, str):
        record = Record.from_dict(loads(record))
    return stored(record)


#: An inserted row's columns, in the order ``put`` builds its tuples.
_INSERT_COLUMNS = ("source", "local_id", "raw_seq", "seq", "deleted", *Stored._fields, "updated_at")


class RecordStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def put(self, items: Iterable[tuple[Record | Stored | str | None, str, str, int]]) -> int:
        """Store ``(record, source, local_id, raw_seq)``; ``record=None`` marks it deleted.

        ``record`` may also come already serialised by a normaliser worker
        process (:func:`stored`; bare JSON is decoded once for its columns).
        One transaction per call; returns how many rows changed.
        """
        items = list(items)
        if not items:
            return 0
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            seq = next_value(conn, RECORD_SEQ, len(items)) - len(items) + 1
            stamp = bound(conn, records.c.updated_at, now)    # as SQLAlchemy's own insert writes it, once a batch
            existing = set(rows_in(conn, records, ("source", "local_id"), ((s, i) for _, s, i, _ in items)))
            inserts, updates, deletions = [], [], []
            for record, source, local_id, raw_seq in items:
                if record is None:
                    if (source, local_id) in existing:
                        # keep the last good description for history; only flag it
                        deletions.append(dict(raw_seq=raw_seq, seq=seq, updated_at=now, deleted=True, s=source,
                                              l=local_id))
                elif (source, local_id) in existing:
                    updates.append(dict(_as_stored(record)._asdict(), raw_seq=raw_seq, seq=seq, updated_at=now,
                                        deleted=False, s=source, l=local_id))
                else:
                    inserts.append((source, local_id, raw_seq, seq, False, *_as_stored(record), stamp))
                seq += 1
            where = update(records).where(records.c.source == bindparam("s"), records.c.local_id == bindparam("l"))
            if updates:
                conn.execute(where, updates)
            if deletions:
                conn.execute(where, deletions)
            # plain tuples in one driver executemany: SQLAlchemy's per-row parameter processing cost more CPU
            # than SQLite's insert of a batch
            insert_rows(conn, records, _INSERT_COLUMNS, inserts)
        return len(items)

    def changed_since(self, seq: int, batch: int = 2000,
                      holdings_brief: bool = False) -> Iterator[tuple[int, str, str, Record | None]]:
        """``(seq, source, local_id, record or None if deleted)`` after ``seq``, in order.

        With ``holdings_brief`` a holdings record (MFHD) comes as its kind and 004 only, read from their
        columns without decoding its JSON: all the dedupe stage needs of it (the merge reads its rows
        through :meth:`holdings_rows_of`).
        """
        last = seq
        # a holdings record's JSON is not even read from the database
        data_col = case((records.c.kind == "holdings", ""), else_=records.c.data) if holdings_brief else records.c.data
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(records.c.seq, records.c.source, records.c.local_id, records.c.deleted,
                                           data_col, records.c.kind, records.c.holdings_of)
                                    .where(records.c.seq > last).order_by(records.c.seq).limit(batch)).all()
            if not rows:
                return
            for s, source, local_id, deleted, data, kind, holdings_of in rows:
                if deleted:
                    yield s, source, local_id, None
                elif holdings_brief and kind == "holdings":
                    yield s, source, local_id, Record(source, local_id, kind=kind, holdings_of=holdings_of)
                else:
                    yield s, source, local_id, decode(data)
            last = rows[-1][0]

    def count_changed_since(self, seq: int) -> int:
        """Records changed (stored or deleted) after ``seq``: what the next dedupe pass has to stage."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(records).where(records.c.seq > seq)).scalar_one())

    def holdings_rows_of(self, conn, linked) -> list[tuple[str, str, str | None]]:
        """``(local_id, holdings_of, Holding rows as JSON)`` of the live holdings records among ``linked`` (a
        subquery with ``source``, ``local_id`` and ``holdings_of``, from ``normaliser.links``): the merge's one
        joined query per member and batch, reading the rows from their own column (no record decoded)."""
        return conn.execute(select(linked.c.local_id, linked.c.holdings_of, records.c.holdings).select_from(
            linked.join(records, and_(records.c.source == linked.c.source, records.c.local_id == linked.c.local_id)))
            .where(records.c.deleted.is_(False), records.c.kind == "holdings")).all()

    def get(self, source: str, local_id: str, include_deleted: bool = False) -> Record | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(records.c.data, records.c.deleted).where(
                records.c.source == source, records.c.local_id == local_id)).first()
        if row is None or (row[1] and not include_deleted):
            return None
        return decode(row[0])

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record]:
        """Live records for the given (source, local_id) keys (decoded with the collector held, see
        :func:`paused_gc`)."""
        with self.engine.connect() as conn, paused_gc():
            return {(source, local_id): decode(data) for source, local_id, data
                    in rows_in(conn, records, ("source", "local_id", "data"), keys, live=True)}

    def iter_live(self, source: str | None = None, batch: int = 5000) -> Iterator[Record]:
        last = 0
        while True:
            query = select(records.c.id, records.c.data).where(records.c.deleted.is_(False), records.c.id > last)
            if source is not None:
                query = query.where(records.c.source == source)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(records.c.id).limit(batch)).all()
            if not rows:
                return
            for _, data in rows:
                yield decode(data)
            last = rows[-1][0]

    def count(self, source: str | None = None) -> int:
        query = select(func.count()).select_from(records).where(records.c.deleted.is_(False))
        if source is not None:
            query = query.where(records.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts_by_source(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(records.c.source, func.count()).where(records.c.deleted.is_(False))
                                .group_by(records.c.source))
            return {s: int(n) for s, n in rows}


# A data-quality report per source, kept with the harvest run that led to it,
# so the staff dashboard can show how a member's data changes over time.
quality_reports = Table(
    "quality_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("run_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
)


class QualityStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    def save(self, source: str, run_id: int | None, data: dict) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(quality_reports.insert().values(source=source, run_id=run_id, created_at=utcnow(),
                                                         data=json.dumps(data, ensure_ascii=False)))

    def reported_runs(self) -> set[int]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(quality_reports.c.run_id)) if r[0] is not None}

    def history(self, source: str, limit: int = 50) -> list[dict]:
        """Newest first: ``{"run_id", "created_at", **report}``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(quality_reports).where(quality_reports.c.source == source)
                                .order_by(quality_reports.c.id.desc()).limit(limit)).mappings().all()
        return [{"run_id": r["run_id"], "created_at": r["created_at"], **json.loads(r["data"])} for r in rows]
