"""Checkpoints: where a member's next harvest starts, and how to resume an interrupted one.

A checkpoint is written in the same transaction as the page it follows (:func:`write`, called by
:meth:`harvester.stores.records.RecordStore.apply`), so a killed harvest resumes exactly after the
last committed page.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, String, Table, Text, select
from sqlalchemy.engine import Connection

from storage.db import UTCDateTime, metadata, upsert, utcnow
from .base import Store

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
    Column("resume_started", UTCDateTime),
    Column("resume_high_water", String(32)),
    Column("state", Text),  # protocol-specific JSON (e.g. the Z39.50 query and offset)
    Column("updated_at", UTCDateTime),
)


@dataclass
class Checkpoint:
    """A member's harvest position: the high water, plus the resume state while a run is unfinished."""

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


def write(conn: Connection, cp: Checkpoint) -> None:
    """Save ``cp`` inside the caller's transaction (the page it follows commits with it)."""
    values = dict(
        high_water=cp.high_water, resume_token=cp.resume_token, resume_from=cp.resume_from,
        resume_full=cp.resume_full, resume_started=cp.resume_started,
        resume_high_water=cp.resume_high_water, state=cp.state, updated_at=utcnow(),
    )
    upsert(conn, checkpoints, dict(source=cp.source, **values), ("source",))


class CheckpointStore(Store):
    """Read and write checkpoints."""

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
            write(conn, checkpoint)
