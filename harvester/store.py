"""The raw store: raw records, harvest runs, checkpoints and quarantine.

Everything a harvest learns is written here and nowhere else.  Writes are
batched, go through the database's single writer lock, and each batch commits
together with its checkpoint, so an interrupted harvest resumes exactly where
the last committed page ended and never stores a record twice.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Boolean, Column, DateTime, Index, Integer, LargeBinary, String, Table, Text,
    UniqueConstraint, and_, func, select, update,
)
from sqlalchemy.engine import Engine

from storage.db import metadata, next_value, upsert, utcnow, write_lock
from .raw import RawRecord

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
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("run_id", Integer),
    UniqueConstraint("source", "local_id", name="uq_raw_source_local"),
)
Index("ix_raw_seq", raw_records.c.seq)

harvest_runs = Table(
    "harvest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("protocol", String(16), nullable=False, default=""),
    Column("full", Boolean, nullable=False, default=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running, ok, failed, interrupted
    Column("added", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("from_datestamp", String(32)),
    Column("high_water", String(32)),
    Column("resumed", Boolean, nullable=False, default=False),
    Column("error", Text),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("source", String(64), primary_key=True),
    # Datestamp to harvest "from" next time: the high water of the last
    # successful run, in the repository's granularity.
    Column("high_water", String(32)),
    # State of an unfinished run, so it can resume: the resumption token of
    # the next page, the "from" that run started with, and when it started
    # (records not seen since a full harvest started are deletions).
    Column("resume_token", Text),
    Column("resume_from", String(32)),
    Column("resume_full", Boolean, nullable=False, default=False),
    Column("resume_started", DateTime(timezone=True)),
    Column("resume_high_water", String(32)),
    Column("state", Text),  # protocol-specific JSON (e.g. file offsets)
    Column("updated_at", DateTime(timezone=True)),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("local_id", String(255)),
    Column("stage", String(16), nullable=False),  # harvest | normalise
    Column("reason", Text, nullable=False),
    Column("payload", LargeBinary),
    Column("run_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved", Boolean, nullable=False, default=False),
)

record_counts = Table(
    "record_counts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("run_id", Integer),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("records", Integer, nullable=False),  # live records of the source when the run ended
)
Index("ix_record_counts_source_id", record_counts.c.source, record_counts.c.id)
Index("ix_runs_source_status_id", harvest_runs.c.source, harvest_runs.c.status, harvest_runs.c.id)

deferred_deletions = Table(
    "deferred_deletions",
    metadata,
    # Deletion notices (OAI-PMH status="deleted") of live records, kept back until the run ends so the
    # safety stop (harvester.safety) can weigh them all; committed with their page, so a resumed run
    # still knows them.
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("datestamp", String(32)),
    Column("run_id", Integer),
)

RAW_SEQ = "raw_seq"
MAX_LOCAL_ID = 255


def unstorable_id(local_id: str) -> str | None:
    """Why a record id cannot be stored (too long, or a NUL that PostgreSQL text refuses), or None."""
    if len(local_id) > MAX_LOCAL_ID:
        return f"record id is {len(local_id)} characters long; at most {MAX_LOCAL_ID} are kept"
    if "\x00" in local_id:
        return "record id contains a NUL character"
    return None


def _printable(text: str) -> str:
    return text.replace("\x00", "\\0")


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
class Checkpoint:
    source: str
    high_water: str | None = None
    resume_token: str | None = None
    resume_from: str | None = None
    resume_full: bool = False
    resume_started: datetime | None = None
    resume_high_water: str | None = None
    state: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.resume_started is not None


@dataclass
class QuarantinedItem:
    """A record (or chunk of bytes) that could not be taken, and why."""

    source: str
    local_id: str | None
    reason: str
    payload: bytes = b""
    stage: str = "harvest"


@dataclass
class RawRow:
    """A raw record as read back from the store, with its change sequence."""

    record: RawRecord
    seq: int
    changed_at: datetime | None = None
    extra: dict = field(default_factory=dict)


class RawStore:
    """Read and write raw records, runs, checkpoints and quarantine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = write_lock(engine)

    # -- raw records -----------------------------------------------------
    def apply(
        self,
        records: Iterable[RawRecord],
        run_id: int | None = None,
        checkpoint: Checkpoint | None = None,
        bad: Iterable[QuarantinedItem] = (),
        defer_deletions: bool = False,
    ) -> Counts:
        """Store one batch (a page) of records, its quarantined items and checkpoint.

        All in one transaction: either the page and its resumption token are
        stored together, or neither is, so a resumed harvest neither skips nor
        repeats a page.  Records whose content hash is unchanged only have
        their ``seen_at`` refreshed; changed ones get a new sequence number.
        ``defer_deletions``: deletion notices of live records are stored in ``deferred_deletions``
        instead of applied (see :meth:`apply_deferred`); a record seen live again leaves that list.
        """
        batch: dict[str, RawRecord] = {}
        bad = list(bad)
        for rec in records:
            problem = unstorable_id(rec.local_id)
            if problem:  # PostgreSQL would refuse the whole page; SQLite would keep a key no one can match
                bad.append(QuarantinedItem(rec.source, _printable(rec.local_id)[:MAX_LOCAL_ID], problem, rec.payload))
                continue
            batch[rec.local_id] = rec  # a page repeating an id: last one wins
        counts = Counts(quarantined=len(bad))
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            existing: dict[str, tuple[str, bool]] = {}
            by_source: dict[str, list[str]] = {}
            for rec in batch.values():
                by_source.setdefault(rec.source, []).append(rec.local_id)
            for source, ids in by_source.items():
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    rows = conn.execute(
                        select(raw_records.c.local_id, raw_records.c.content_hash, raw_records.c.deleted)
                        .where(raw_records.c.source == source, raw_records.c.local_id.in_(chunk))
                    )
                    for local_id, chash, deleted in rows:
                        existing[(source, local_id)] = (chash, bool(deleted))
            inserts, updates, touched, deferred = [], [], [], []
            for rec in batch.values():
                old = existing.get((rec.source, rec.local_id))
                if defer_deletions and rec.deleted and old is not None and not old[1]:
                    deferred.append(rec)
                    continue
                if old is None:
                    if rec.deleted:
                        counts.unchanged += 1  # deletion of something we never had
                        continue
                    counts.added += 1
                    inserts.append(rec)
                elif old[0] == rec.content_hash and old[1] == rec.deleted:
                    counts.unchanged += 1
                    touched.append(rec)
                else:
                    if rec.deleted:
                        counts.deleted += 1
                    elif old[1]:
                        counts.added += 1  # re-appeared after a deletion
                    else:
                        counts.updated += 1
                    updates.append(rec)
            changed = len(inserts) + len(updates)
            seq = next_value(conn, RAW_SEQ, changed) - changed + 1 if changed else 0
            if inserts:
                rows = []
                for rec in inserts:
                    rows.append(_row(rec, run_id, now, seq) | {"first_seen": now})
                    seq += 1
                conn.execute(raw_records.insert(), rows)
            for rec in updates:
                values = _row(rec, run_id, now, seq)
                values.pop("source"), values.pop("local_id")
                conn.execute(
                    update(raw_records)
                    .where(raw_records.c.source == rec.source, raw_records.c.local_id == rec.local_id)
                    .values(**values)
                )
                seq += 1
            for rec in touched:
                conn.execute(
                    update(raw_records)
                    .where(raw_records.c.source == rec.source, raw_records.c.local_id == rec.local_id)
                    .values(seen_at=now, datestamp=rec.datestamp)
                )
            _quarantine(conn, bad, run_id, now)
            _defer(conn, deferred, [r for r in batch.values() if not r.deleted], run_id)
            if checkpoint is not None:
                _save_checkpoint(conn, checkpoint)
        return counts

    def deferred(self, source: str) -> list[str]:
        """Local ids of the live records whose deletion notices wait for the safety stop."""
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(deferred_deletions.c.local_id)
                                               .where(deferred_deletions.c.source == source)
                                               .order_by(deferred_deletions.c.local_id))]

    def apply_deferred(self, source: str, run_id: int | None = None) -> int:
        """Apply the kept-back deletion notices of ``source`` (records still live are marked deleted)."""
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            rows = conn.execute(select(deferred_deletions.c.local_id, deferred_deletions.c.datestamp)
                                .where(deferred_deletions.c.source == source)).all()
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
            conn.execute(deferred_deletions.delete().where(deferred_deletions.c.source == source))
        return len(gone)

    def drop_deferred(self, source: str) -> int:
        """Forget the kept-back deletion notices (a member of staff rejected them): the records stay."""
        with self._lock, self.engine.begin() as conn:
            return conn.execute(deferred_deletions.delete()
                                .where(deferred_deletions.c.source == source)).rowcount or 0

    def delete_unseen(self, source: str, since: datetime, run_id: int | None = None) -> int:
        """Mark deleted every live record of ``source`` not seen since ``since``.

        Ends a full harvest: what the member no longer sends, it no longer has.
        """
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(
                select(raw_records.c.local_id).where(
                    raw_records.c.source == source,
                    raw_records.c.deleted.is_(False),
                    raw_records.c.seen_at < since,
                )
            )]
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

    def changed_since(self, seq: int, batch: int = 1000) -> Iterator[RawRow]:
        """Every raw record changed after sequence ``seq``, in sequence order."""
        last = seq
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(raw_records).where(raw_records.c.seq > last)
                    .order_by(raw_records.c.seq).limit(batch)
                ).mappings().all()
            if not rows:
                return
            for row in rows:
                yield _raw_row(row)
            last = rows[-1]["seq"]

    def count_changed_since(self, seq: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(raw_records)
                                    .where(raw_records.c.seq > seq)).scalar_one())

    def get(self, source: str, local_id: str) -> RawRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(raw_records).where(raw_records.c.source == source, raw_records.c.local_id == local_id)
            ).mappings().first()
        return None if row is None else _raw_row(row)

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

    def local_ids(self, source: str, include_deleted: bool = False) -> list[str]:
        query = select(raw_records.c.local_id).where(raw_records.c.source == source)
        if not include_deleted:
            query = query.where(raw_records.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query.order_by(raw_records.c.local_id))]

    # -- runs --------------------------------------------------------------
    def start_run(self, source: str, protocol: str, full: bool, from_datestamp: str | None,
                  resumed: bool = False) -> int:
        with self._lock, self.engine.begin() as conn:
            result = conn.execute(harvest_runs.insert().values(
                source=source, protocol=protocol, full=full, started_at=utcnow(), status="running",
                from_datestamp=from_datestamp, resumed=resumed,
                added=0, updated=0, deleted=0, unchanged=0, quarantined=0,
            ))
            return int(result.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str, counts: Counts, error: str | None = None,
                   high_water: str | None = None) -> None:
        """End a run; also note the source's live record count then (the staff pages' trend line)."""
        now = utcnow()
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(harvest_runs).where(harvest_runs.c.id == run_id).values(
                status=status, finished_at=now, error=error, high_water=high_water,
                **counts.as_dict(),
            ))
            source = conn.execute(select(harvest_runs.c.source).where(harvest_runs.c.id == run_id)).scalar_one()
            live = conn.execute(select(func.count()).select_from(raw_records).where(
                raw_records.c.source == source, raw_records.c.deleted.is_(False))).scalar_one()
            conn.execute(record_counts.insert().values(source=source, run_id=run_id, at=now, records=live))

    def record_trend(self, limit: int = 20) -> dict[str, list[int]]:
        """source → its live record counts after each of its last ``limit`` runs, oldest first (one query)."""
        rank = func.row_number().over(partition_by=record_counts.c.source,
                                      order_by=record_counts.c.id.desc()).label("rank")
        ranked = select(record_counts.c.source, record_counts.c.records, record_counts.c.id, rank).subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(select(ranked.c.source, ranked.c.records).where(ranked.c.rank <= limit)
                                .order_by(ranked.c.source, ranked.c.id)).all()
        trend: dict[str, list[int]] = {}
        for source, records in rows:
            trend.setdefault(source, []).append(int(records))
        return trend

    def counts_by_source(self) -> dict[str, int]:
        """source → live raw records, in one query (the overview of 130 members)."""
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(
                select(raw_records.c.source, func.count()).where(raw_records.c.deleted.is_(False))
                .group_by(raw_records.c.source))}

    def quarantined_by_source(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(
                select(quarantine.c.source, func.count()).where(quarantine.c.resolved.is_(False))
                .group_by(quarantine.c.source))}

    def interrupt_stale_runs(self, source: str) -> int:
        """Runs still 'running' from a process that died are marked interrupted."""
        with self._lock, self.engine.begin() as conn:
            result = conn.execute(
                update(harvest_runs)
                .where(harvest_runs.c.source == source, harvest_runs.c.status == "running")
                .values(status="interrupted", finished_at=utcnow(),
                        error="the process stopped before the run finished; the next run resumes it")
            )
            return result.rowcount or 0

    def runs(self, source: str | None = None, limit: int = 50) -> list[dict]:
        query = select(harvest_runs).order_by(harvest_runs.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(harvest_runs.c.source == source)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def last_runs(self) -> dict[str, dict]:
        """The newest run of every source."""
        newest = select(func.max(harvest_runs.c.id)).group_by(harvest_runs.c.source).scalar_subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(select(harvest_runs).where(harvest_runs.c.id.in_(newest))).mappings()
            return {r["source"]: dict(r) for r in rows}

    def last_success(self, source: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(harvest_runs).where(harvest_runs.c.source == source, harvest_runs.c.status == "ok")
                .order_by(harvest_runs.c.id.desc()).limit(1)
            ).mappings().first()
        return None if row is None else dict(row)

    # -- checkpoints -------------------------------------------------------
    def checkpoint(self, source: str) -> Checkpoint:
        with self.engine.connect() as conn:
            row = conn.execute(select(checkpoints).where(checkpoints.c.source == source)).mappings().first()
        if row is None:
            return Checkpoint(source=source)
        return Checkpoint(
            source=source, high_water=row["high_water"], resume_token=row["resume_token"],
            resume_from=row["resume_from"], resume_full=bool(row["resume_full"]),
            resume_started=row["resume_started"], resume_high_water=row["resume_high_water"],
            state=row["state"],
        )

    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock, self.engine.begin() as conn:
            _save_checkpoint(conn, checkpoint)

    # -- quarantine --------------------------------------------------------
    def quarantine(self, items: Iterable[QuarantinedItem], run_id: int | None = None) -> int:
        items = list(items)
        if not items:
            return 0
        with self._lock, self.engine.begin() as conn:
            _quarantine(conn, items, run_id, utcnow())
        return len(items)

    def quarantined(self, source: str | None = None, stage: str | None = None, limit: int = 100) -> list[dict]:
        query = select(quarantine).where(quarantine.c.resolved.is_(False))
        if source is not None:
            query = query.where(quarantine.c.source == source)
        if stage is not None:
            query = query.where(quarantine.c.stage == stage)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(quarantine.c.id.desc()).limit(limit)).mappings()]

    def quarantined_keys(self, stage: str) -> set[tuple[str, str]]:
        """(source, local_id) of every unresolved quarantined record of a stage (no payloads)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(quarantine.c.source, quarantine.c.local_id).where(
                quarantine.c.stage == stage, quarantine.c.resolved.is_(False)))
            return {(s, l) for s, l in rows}

    def quarantine_summary(self, source: str | None = None) -> list[dict]:
        """Unresolved quarantine grouped by source, stage and reason, with counts."""
        query = (select(quarantine.c.source, quarantine.c.stage, quarantine.c.reason, func.count().label("count"))
                 .where(quarantine.c.resolved.is_(False))
                 .group_by(quarantine.c.source, quarantine.c.stage, quarantine.c.reason))
        if source is not None:
            query = query.where(quarantine.c.source == source)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def count_quarantined(self, source: str | None = None, stage: str | None = None) -> int:
        query = select(func.count()).select_from(quarantine).where(quarantine.c.resolved.is_(False))
        if source is not None:
            query = query.where(quarantine.c.source == source)
        if stage is not None:
            query = query.where(quarantine.c.stage == stage)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def quarantined_item(self, item_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).mappings().first()
        return None if row is None else dict(row)

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

    def resolve_quarantine(self, source: str, local_id: str, stage: str) -> None:
        """A record that now passes leaves quarantine (kept for history, flagged)."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(quarantine).where(and_(
                quarantine.c.source == source, quarantine.c.local_id == local_id,
                quarantine.c.stage == stage, quarantine.c.resolved.is_(False),
            )).values(resolved=True))

    def changes_page(self, after: int, limit: int, *, sources: Iterable[str] | None = None,
                     local_ids: Iterable[str] | None = None, start: datetime | None = None,
                     end: datetime | None = None, formats: Iterable[str] | None = None,
                     syntaxes: Iterable[str] | None = None, payload: bool = True,
                     total: bool = False) -> tuple[list[RawRow], int | None]:
        """Up to ``limit`` raw records changed after sequence ``after`` that match, in sequence order.

        For downstream readers paging the member records (OAI-PMH, exports),
        so they never read this module's table themselves.  ``sources`` and
        ``local_ids`` narrow to those members and records; ``start``/``end``
        (naive UTC) to ``changed_at`` in [start, end); ``formats`` and
        ``syntaxes`` to those — deletions always pass these two, they carry
        no metadata.  Without ``payload`` the records come back with an empty
        one (list headers need none); ``total`` also counts every match after
        ``after`` (``limit`` 0 reads no rows).
        """
        c = raw_records.c
        cond = [c.seq > after]
        for column, values in ((c.source, sources), (c.local_id, local_ids)):
            if values is not None:
                cond.append(column.in_(list(values)))
        cond += [c.changed_at >= start] if start is not None else []
        cond += [c.changed_at < end] if end is not None else []
        kinds = [column.in_(list(values)) for column, values in ((c.format, formats), (c.syntax, syntaxes))
                 if values is not None]
        if kinds:
            cond.append(c.deleted.is_(True) | and_(*kinds))
        cols = [col for col in raw_records.c if payload or col.name != "payload"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(*cond).order_by(c.seq).limit(limit)).mappings().all() \
                if limit else []
            count = int(conn.execute(select(func.count()).select_from(raw_records).where(*cond)).scalar_one()) \
                if total else None
        return [_raw_row(r if payload else {**r, "payload": b""}) for r in rows], count


def _quarantine(conn, items: list[QuarantinedItem], run_id: int | None, now: datetime) -> None:
    """Quarantine items; one already there (same source, id, stage, reason and bytes) is only refreshed.

    A file dump is read in full on every run, so its one broken record would
    otherwise be quarantined again and again.
    """
    for item in items:
        same = and_(quarantine.c.source == item.source, quarantine.c.stage == item.stage,
                    quarantine.c.reason == item.reason, quarantine.c.resolved.is_(False),
                    quarantine.c.payload == item.payload,
                    quarantine.c.local_id.is_(None) if item.local_id is None
                    else quarantine.c.local_id == item.local_id)
        existing = conn.execute(select(quarantine.c.id).where(same).limit(1)).first()
        if existing:
            conn.execute(update(quarantine).where(quarantine.c.id == existing[0])
                         .values(run_id=run_id, created_at=now))
        else:
            conn.execute(quarantine.insert().values(
                source=item.source, stage=item.stage, reason=_printable(item.reason),
                local_id=None if item.local_id is None else _printable(item.local_id)[:MAX_LOCAL_ID],
                payload=item.payload, run_id=run_id, created_at=now, resolved=False))


def _defer(conn, deferred: list[RawRecord], alive: list[RawRecord], run_id: int | None) -> None:
    """Keep deletion notices back; a record that came (back) live is no longer to be deleted.

    The common case — nothing kept back for the source — costs one indexed lookup per page.
    """
    dd = deferred_deletions
    for source in {r.source for r in alive}:
        if conn.execute(select(dd.c.local_id).where(dd.c.source == source).limit(1)).first() is None:
            continue
        ids = [r.local_id for r in alive if r.source == source]
        for i in range(0, len(ids), 500):
            conn.execute(dd.delete().where(dd.c.source == source, dd.c.local_id.in_(ids[i:i + 500])))
    for rec in deferred:
        conn.execute(dd.delete().where(dd.c.source == rec.source, dd.c.local_id == rec.local_id))
    if deferred:
        conn.execute(dd.insert(), [dict(source=r.source, local_id=r.local_id, datestamp=r.datestamp, run_id=run_id)
                                   for r in deferred])


def _row(rec: RawRecord, run_id: int | None, now: datetime, seq: int) -> dict:
    return dict(
        source=rec.source, local_id=rec.local_id, datestamp=rec.datestamp, deleted=rec.deleted,
        format=rec.format, syntax=rec.syntax, payload=rec.payload, content_hash=rec.content_hash,
        seen_at=now, changed_at=now, seq=seq, run_id=run_id,
    )


def _raw_row(row) -> RawRow:
    rec = RawRecord(
        source=row["source"], local_id=row["local_id"], payload=row["payload"], syntax=row["syntax"],
        format=row["format"], datestamp=row["datestamp"], deleted=bool(row["deleted"]),
        content_hash=row["content_hash"],
    )
    return RawRow(record=rec, seq=row["seq"], changed_at=row["changed_at"])


def _save_checkpoint(conn, cp: Checkpoint) -> None:
    values = dict(
        high_water=cp.high_water, resume_token=cp.resume_token, resume_from=cp.resume_from,
        resume_full=cp.resume_full, resume_started=cp.resume_started,
        resume_high_water=cp.resume_high_water, state=cp.state, updated_at=utcnow(),
    )
    upsert(conn, checkpoints, dict(source=cp.source, **values), ("source",))
