"""Harvest locks: one harvest of a member at a time, across threads and processes sharing a database.

In rq mode a Redis lock per source keeps two harvest jobs of one member apart; embedded mode (the
CLI, the staff pages' in-process runner, cron) has no Redis, and a second harvest used to mark the
first's run interrupted and silently resume from its checkpoint, both writing the same member.  A
row per source in ``harvest_locks`` is that lock in the database itself, so it holds for any two
processes on the database (SQLite or PostgreSQL):

* :meth:`HarvestLockStore.acquire_lock` takes it, or returns who holds it;
* a lock whose holder is gone is taken over: it expired (the holder refreshes it with every page,
  :meth:`HarvestLockStore.refresh_lock`), or its process no longer exists on this machine (kill -9);
* the holder releases it at the end of the run, whatever the outcome.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Integer, String, Table, delete, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import UTCDateTime, metadata, utcnow
from .base import Store

harvest_locks = Table(
    "harvest_locks",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),   # unique per harvest run
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

#: How long a lock lasts without a refresh; every committed page refreshes it.
LOCK_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class LockHolder:
    """Who harvests a member now: what a second harvest reports instead of running."""

    source: str
    host: str
    pid: int
    taken_at: datetime

    def describe(self) -> str:
        return (f"source {self.source!r} is already being harvested (process {self.pid} on {self.host}, "
                f"since {self.taken_at:%Y-%m-%d %H:%M:%S} UTC); this run did nothing")


def new_owner() -> str:
    return uuid.uuid4().hex


def process_alive(pid: object) -> bool:
    """Is process ``pid`` of this machine still there?  (One we may not signal counts as alive.)"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive_here(host: str, pid: int) -> bool:
    """Is the holder still there?  Another machine's processes count as alive (the lock expires instead)."""
    return host != socket.gethostname() or process_alive(pid)


class HarvestLockStore(Store):
    """Take, refresh and release the harvest lock of a member."""

    def acquire_lock(self, source: str, owner: str, ttl: timedelta = LOCK_TTL) -> LockHolder | None:
        """Take ``source``'s lock for ``owner``: None when taken, else the live holder."""
        try:
            return self._acquire(source, owner, ttl)
        except IntegrityError:  # another process inserted it between our select and insert: look again
            return self._acquire(source, owner, ttl)

    def _acquire(self, source: str, owner: str, ttl: timedelta) -> LockHolder | None:
        now = utcnow()
        mine = dict(owner=owner, host=socket.gethostname(), pid=os.getpid(), taken_at=now, expires_at=now + ttl)
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(select(harvest_locks).where(harvest_locks.c.source == source)).mappings().first()
            if row is None:
                conn.execute(harvest_locks.insert().values(source=source, **mine))
                return None
            if row["expires_at"] > now and _alive_here(row["host"], row["pid"]):
                return LockHolder(source, row["host"], row["pid"], row["taken_at"])
            taken = conn.execute(update(harvest_locks).where(harvest_locks.c.source == source,
                                                             harvest_locks.c.owner == row["owner"]).values(**mine))
            if taken.rowcount == 1:
                return None
        holder = self.lock_holder(source)
        return holder if holder is not None else self._acquire(source, owner, ttl)

    def refresh_lock(self, source: str, owner: str, ttl: timedelta = LOCK_TTL) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(harvest_locks).where(harvest_locks.c.source == source, harvest_locks.c.owner == owner)
                         .values(expires_at=utcnow() + ttl))

    def release_lock(self, source: str, owner: str) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(delete(harvest_locks).where(harvest_locks.c.source == source,
                                                     harvest_locks.c.owner == owner))

    def lock_holder(self, source: str) -> LockHolder | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(harvest_locks).where(harvest_locks.c.source == source)).mappings().first()
        return None if row is None else LockHolder(source, row["host"], row["pid"], row["taken_at"])
