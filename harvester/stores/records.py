"""Raw records as harvested (the deletion notices kept back for the safety stop: :mod:`.deferred`).

Everything a harvest learns about records is written here.  Writes are batched, go through the
database's single writer lock, and each batch commits together with its quarantined items and its
checkpoint, so an interrupted harvest resumes exactly where the last committed page ended and never
stores a record twice.  Every change gets a new sequence number (``raw_seq``) so the normaliser and
the change feed read "what changed since my cursor".
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Boolean, Column, ColumnElement, Index, Integer, LargeBinary, Select, String, Table, UniqueConstraint, and_, bindparam,
    func, or_, select, update,
)
from sqlalchemy.engine import Connection, RowMapping

from storage.db import UTCDateTime, bound, insert_rows, metadata, next_value, record_in, utcnow
from ..raw import QuarantinedItem, RawRecord, stored_raw
from . import checkpoints, deferred as notices, quarantine
from .base import Store
from .checkpoints import Checkpoint
from .quarantine import MAX_LOCAL_ID, printable

raw_records = Table(
    "raw_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("local_id", String(255), nullable=False),
    Column("datestamp", String(32)),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("format", String(16), nullable=False),
    Column("syntax", String(16), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("run_id", Integer),
    UniqueConstraint("source", "local_id", name="uq_raw_source_local"),
)
Index("ix_raw_seq", raw_records.c.seq)
Index("ix_raw_source_deleted", raw_records.c.source, raw_records.c.deleted)  # counts_by_source: index only

RAW_SEQ = "raw_seq"


def unstorable_id(local_id: str) -> str | None:
    """Why a record id cannot be stored (too long, or a NUL that PostgreSQL text refuses), or None."""
    if len(local_id) > MAX_LOCAL_ID:
        return f"record id is {len(local_id)} characters long; at most {MAX_LOCAL_ID} are kept"
    if "\x00" in local_id:
        return "record id contains a NUL character"
    return None


@dataclass
class Counts:
    """What a harvest did to the store, as shown in run reports."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        for name in ("added", "updated", "deleted", "unchanged", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def seen(self) -> int:
        return self.added + self.updated + self.deleted + self.unchanged

    def as_dict(self) -> dict[str, int]:
        return {
            "added": self.added, "updated": self.updated, "deleted": self.deleted,
            "unchanged": self.unchanged, "quarantined": self.quarantined,
        }


@dataclass
class RawRow:
    """A raw record as read back from the store, with its change sequence."""

    record: RawRecord
    seq: int
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Changes:
    """Which changed records a reader wants (the change feed's windows).

    ``formats`` keeps live records of those formats only, ``not_formats`` drops live records of those,
    ``syntaxes`` keeps live records serialised so; deletions always pass these three (they carry no
    metadata).  ``start``/``end`` bound ``changed_at`` (end excluded).
    """

    sources: Collection[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    formats: Collection[str] | None = None
    not_formats: Collection[str] | None = None
    syntaxes: Collection[str] | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The window as conditions on ``raw_records`` (read only here: the table stays private)."""
        r = raw_records.c
        cond = []
        if self.sources is not None:
            cond.append(r.source.in_(list(self.sources)))
        if self.start is not None:
            cond.append(r.changed_at >= self.start)
        if self.end is not None:
            cond.append(r.changed_at < self.end)
        live = []
        if self.formats is not None:
            live.append(r.format.in_(list(self.formats)))
        if self.not_formats is not None:
            live.append(r.format.not_in(list(self.not_formats)))
        if self.syntaxes is not None:
            live.append(r.syntax.in_(list(self.syntaxes)))
        if live:
            cond.append(or_(r.deleted.is_(True), and_(*live)))
        return cond


def live_count(conn: Connection, source: str) -> int:
    """Live records of ``source``, inside the caller's transaction (a run's end notes it)."""
    return int(conn.execute(select(func.count()).select_from(raw_records).where(
        raw_records.c.source == source, raw_records.c.deleted.is_(False))).scalar_one())


class RecordStore(Store):
    """Read and write raw records and kept-back deletion notices."""

    def apply(self, records: Iterable[RawRecord], run_id: int | None = None, checkpoint: Checkpoint | None = None,
              bad: Iterable[QuarantinedItem] = (), defer_deletions: bool = False) -> Counts:
        """Store one batch (a page) of records, its quarantined items and checkpoint.

        All in one transaction: either the page and its resumption token are
        stored together, or neither is, so a resumed harvest neither skips nor
        repeats a page.  Records whose content hash is unchanged only have
        their ``seen_at`` refreshed; changed ones get a new sequence number.
        ``defer_deletions``: deletion notices of live records are stored in ``deferred_deletions``
        instead of applied (:mod:`harvester.stores.deferred`, :meth:`apply_deferred`).
        """
        batch: dict[str, RawRecord] = {}
        bad = list(bad)
        for rec in records:
            problem = unstorable_id(rec.local_id)
            if problem:  # PostgreSQL would refuse the whole page; SQLite would keep a key no one can match
                bad.append(QuarantinedItem(rec.source, printable(rec.local_id)[:MAX_LOCAL_ID], problem, rec.payload))
                continue
            batch[rec.local_id] = rec  # a page repeating an id: last one wins
        counts = Counts(quarantined=len(bad))
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            plan = _Plan.of(batch.values(), _existing(conn, batch.values()), defer_deletions, counts)
            plan.write(conn, run_id, now)
            quarantine.add(conn, bad, run_id, now)
            notices.keep(conn, plan.deferred, [r for r in batch.values() if not r.deleted], run_id)
            if checkpoint is not None:
                checkpoints.write(conn, checkpoint)
        return counts

    def deferred(self, source: str) -> list[str]:
        """Local ids of the live records whose deletion notices wait for the safety stop."""
        with self.engine.connect() as conn:
            return [local_id for local_id, _ in notices.waiting(conn, source)]

    def apply_deferred(self, source: str, run_id: int | None = None) -> int:
        """Apply the kept-back deletion notices of ``source`` (records still live are marked deleted)."""
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            rows = notices.waiting(conn, source)
            live = {r[0] for r in conn.execute(select(raw_records.c.local_id).where(
                raw_records.c.source == source, raw_records.c.deleted.is_(False),
                raw_records.c.local_id.in_([r[0] for r in rows])))} if rows else set()
            gone = [(local_id, datestamp) for local_id, datestamp in rows if local_id in live]
            seq = next_value(conn, RAW_SEQ, len(gone)) - len(gone) + 1 if gone else 0
            for local_id, datestamp in gone:
                conn.execute(update(raw_records)
                             .where(raw_records.c.source == source, raw_records.c.local_id == local_id)
                             .values(deleted=True, payload=b"", content_hash="deleted", seq=seq, datestamp=datestamp,
                                     changed_at=now, seen_at=now, run_id=run_id))
                seq += 1
            notices.forget(conn, source)
        return len(gone)

    def drop_deferred(self, source: str) -> int:
        """Forget the kept-back deletion notices (a member of staff rejected them): the records stay."""
        with self._lock, self.engine.begin() as conn:
            return notices.forget(conn, source)

    def _unseen_query(self, source: str, since: datetime) -> Select:
        return select(raw_records.c.local_id).where(
            raw_records.c.source == source, raw_records.c.deleted.is_(False), raw_records.c.seen_at < since)

    def unseen(self, source: str, since: datetime, sample: int) -> tuple[int, list[str]]:
        """(live records of ``source`` not seen since ``since``, the first ``sample`` of their ids)."""
        query = self._unseen_query(source, since)
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            ids = [r[0] for r in conn.execute(query.order_by(raw_records.c.local_id).limit(sample))]
        return int(count), ids

    def delete_unseen(self, source: str, since: datetime, run_id: int | None = None) -> int:
        """Mark deleted every live record of ``source`` not seen since ``since``.

        Ends a full harvest: what the member no longer sends, it no longer has.
        """
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(self._unseen_query(source, since))]
            if not ids:
                return 0
            seq = next_value(conn, RAW_SEQ, len(ids)) - len(ids) + 1
            for local_id in ids:
                conn.execute(
                    update(raw_records)
                    .where(raw_records.c.source == source, raw_records.c.local_id == local_id)
                    .values(deleted=True, payload=b"", content_hash="deleted", seq=seq,
                            changed_at=now, run_id=run_id)
                )
                seq += 1
        return len(ids)

    def renormalise(self, source: str, local_id: str) -> bool:
        """Give a stored record a new change sequence, so the next build normalises it again.

        Retrying a record the normaliser refused, after the normaliser (or the member's mapping) was
        fixed; False when the raw record is gone.
        """
        with self._lock, self.engine.begin() as conn:
            exists = conn.execute(select(raw_records.c.id).where(
                raw_records.c.source == source, raw_records.c.local_id == local_id)).first()
            if exists is None:
                return False
            conn.execute(update(raw_records).where(raw_records.c.id == exists[0])
                         .values(seq=next_value(conn, RAW_SEQ), changed_at=utcnow()))
        return True

    # -- reading -----------------------------------------------------------------
    def changed_since(self, seq: int, batch: int = 1000) -> Iterator[RawRow]:
        """Every raw record after ``seq``, in order, from plain rows without ``changed_at`` (~14 against ~24 µs)."""
        c = raw_records.c
        cols = (c.seq, c.source, c.local_id, c.payload, c.syntax, c.format, c.datestamp, c.deleted, c.content_hash)
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(*cols).where(c.seq > seq).order_by(c.seq).limit(batch)).all()
            yield from (RawRow(stored_raw(*values), row_seq) for row_seq, *values in rows)
            if len(rows) < batch:
                return
            seq = rows[-1][0]

    def changes(self, after: int, limit: int, window: Changes = Changes(), payloads: bool = True) -> list[RawRow]:
        """Up to ``limit`` records of ``window`` changed after sequence ``after``, in sequence order.

        ``payloads=False`` leaves the payloads out (an empty ``payload``): listing identifiers only.
        """
        cols = [c for c in raw_records.c if c.name in _RAW_ROW_COLUMNS and (payloads or c.name != "payload")]
        query = (select(*cols).where(raw_records.c.seq > after, *window.where())
                 .order_by(raw_records.c.seq).limit(limit))
        with self.engine.connect() as conn:
            return [_raw_row(r) for r in conn.execute(query).mappings().all()]   # one fetchall, not a fetchone a row

    def count_changes(self, window: Changes = Changes(), upto: int | None = None) -> int:
        """Records of ``window`` (at or before sequence ``upto``, when given)."""
        cond = window.where() + ([raw_records.c.seq <= upto] if upto is not None else [])
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(raw_records).where(*cond)).scalar_one())

    def count_changed_since(self, seq: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(raw_records)
                                    .where(raw_records.c.seq > seq)).scalar_one())

    def earliest_change(self) -> datetime | None:
        """When the oldest stored change happened (None for an empty store)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(raw_records.c.changed_at))).scalar()

    def last_seq(self) -> int:
        """The newest change's sequence number (0 for an empty store)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(raw_records.c.seq))).scalar() or 0)

    def get(self, source: str, local_id: str) -> RawRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(raw_records).where(raw_records.c.source == source, raw_records.c.local_id == local_id)
            ).mappings().first()
        return None if row is None else _raw_row(row)

    def payloads(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RawRecord]:
        """Live raw records for ``(source, local_id)`` keys, in one query per source and chunk of ids."""
        out: dict[tuple[str, str], RawRecord] = {}
        with self.engine.connect() as conn:
            for where in record_in(raw_records.c.source, raw_records.c.local_id, keys):
                rows = conn.execute(select(raw_records).where(where, raw_records.c.deleted.is_(False))).mappings()
                for row in rows:
                    out[(row["source"], row["local_id"])] = _raw_row(row).record
        return out

    def last_seen(self, source: str) -> datetime | None:
        """When a record of ``source`` was last seen (None if never).

        ``seen_at`` has one-second resolution, so a run that starts within the
        second its predecessor ended waits for the clock to move on before
        taking its start as the "not seen since" mark for deletions.
        """
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.max(raw_records.c.seen_at)).where(raw_records.c.source == source)
            ).scalar_one_or_none()

    def count(self, source: str | None = None, include_deleted: bool = False) -> int:
        query = select(func.count()).select_from(raw_records)
        if source is not None:
            query = query.where(raw_records.c.source == source)
        if not include_deleted:
            query = query.where(raw_records.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts_by_source(self) -> dict[str, int]:
        """source → live raw records, in one query (the overview of 130 members)."""
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(
                select(raw_records.c.source, func.count()).where(raw_records.c.deleted.is_(False))
                .group_by(raw_records.c.source))}

    def first_seen(self) -> dict[tuple[str, str], datetime]:
        """(source, local_id) → when first harvested, live records only: whose cataloguing came first."""
        r = raw_records.c
        with self.engine.connect() as conn:
            return {(s, i): t for s, i, t in conn.execute(select(r.source, r.local_id, r.first_seen).where(~r.deleted))}

    def local_ids(self, source: str, include_deleted: bool = False) -> list[str]:
        query = select(raw_records.c.local_id).where(raw_records.c.source == source)
        if not include_deleted:
            query = query.where(raw_records.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query.order_by(raw_records.c.local_id))]


def _existing(conn: Connection, records: Iterable[RawRecord]) -> dict[tuple[str, str], tuple[str, bool]]:
    """(source, local_id) → (content hash, deleted) of the stored versions of ``records``."""
    existing: dict[tuple[str, str], tuple[str, bool]] = {}
    r = raw_records.c
    for where in record_in(r.source, r.local_id, [(rec.source, rec.local_id) for rec in records]):
        for source, local_id, chash, deleted in conn.execute(
                select(r.source, r.local_id, r.content_hash, r.deleted).where(where)):
            existing[(source, local_id)] = (chash, bool(deleted))
    return existing


@dataclass
class _Plan:
    """What one batch does to the table: new rows, changed rows, rows only seen again, notices kept back."""

    inserts: list[RawRecord] = field(default_factory=list)
    updates: list[RawRecord] = field(default_factory=list)
    touched: list[RawRecord] = field(default_factory=list)
    deferred: list[RawRecord] = field(default_factory=list)

    @classmethod
    def of(cls, batch: Iterable[RawRecord], existing: dict[tuple[str, str], tuple[str, bool]], defer: bool,
           counts: Counts) -> "_Plan":
        plan = cls()
        for rec in batch:
            old = existing.get((rec.source, rec.local_id))
            if defer and rec.deleted and old is not None and not old[1]:
                plan.deferred.append(rec)
            elif old is None:
                if rec.deleted:
                    counts.unchanged += 1  # deletion of something we never had
                else:
                    counts.added += 1
                    plan.inserts.append(rec)
            elif old[0] == rec.content_hash and old[1] == rec.deleted:
                counts.unchanged += 1
                plan.touched.append(rec)
            else:
                if rec.deleted:
                    counts.deleted += 1
                elif old[1]:
                    counts.added += 1  # re-appeared after a deletion
                else:
                    counts.updated += 1
                plan.updates.append(rec)
        return plan

    def write(self, conn: Connection, run_id: int | None, now: datetime) -> None:
        changed = len(self.inserts) + len(self.updates)
        seq = next_value(conn, RAW_SEQ, changed) - changed + 1 if changed else 0
        if self.inserts:
            # plain tuples in one driver executemany, the timestamp bound once: SQLAlchemy's per-row processing
            # (three datetimes a row) cost more CPU than reading and parsing the record
            stamp = bound(conn, raw_records.c.seen_at, now)
            insert_rows(conn, raw_records, _COLUMNS,
                        [_values(rec, run_id, stamp, seq + i) for i, rec in enumerate(self.inserts)])
            seq += len(self.inserts)
        for rec in self.updates:
            values = {c: v for c, v in zip(_COLUMNS, _values(rec, run_id, now, seq)) if c not in _KEPT}
            conn.execute(update(raw_records)
                         .where(raw_records.c.source == rec.source, raw_records.c.local_id == rec.local_id)
                         .values(**values))
            seq += 1
        if self.touched:
            c = raw_records.c  # one executemany: an UPDATE each cost 3× reading the record (bench/scale_skip.py)
            conn.execute(update(raw_records).where(c.source == bindparam("s"), c.local_id == bindparam("l"))
                         .values(seen_at=bindparam("t", type_=c.seen_at.type), datestamp=bindparam("d")),
                         [dict(s=rec.source, l=rec.local_id, t=now, d=rec.datestamp) for rec in self.touched])


#: A record's columns, in :func:`_values`' order: an insert writes them all, an update all but :data:`_KEPT`.
_COLUMNS = ("source", "local_id", "datestamp", "deleted", "format", "syntax", "payload", "content_hash",
            "first_seen", "seen_at", "changed_at", "seq", "run_id")
#: What an update leaves as it was: the record's key and when it was first seen.
_KEPT = ("source", "local_id", "first_seen")


def _values(rec: RawRecord, run_id: int | None, now: object, seq: int) -> tuple:
    """``rec`` as a row of :data:`_COLUMNS`; ``now`` every timestamp (bound once for a plain driver insert)."""
    return (rec.source, rec.local_id, rec.datestamp, rec.deleted, rec.format, rec.syntax, rec.payload,
            rec.content_hash, now, now, now, seq, run_id)


#: The columns :func:`_raw_row` reads: a read asks for these alone (each timestamp left out is one datetime fewer
#: to parse a row; the normalise stage's read, :meth:`RawStore.changed_since`, asks for none).
_RAW_ROW_COLUMNS = frozenset(("source", "local_id", "payload", "syntax", "format", "datestamp", "deleted",
                              "content_hash", "seq", "changed_at"))


def _raw_row(row: RowMapping) -> RawRow:
    rec = stored_raw(row["source"], row["local_id"], row.get("payload", b""), row["syntax"], row["format"],
                     row["datestamp"], row["deleted"], row["content_hash"])
    return RawRow(record=rec, seq=row["seq"], changed_at=row["changed_at"])
