"""Quarantine: records (or chunks of bytes) a stage could not take, with the reason, kept and counted.

Both the harvest (a broken record in a dump, an OAI record without metadata) and the normaliser
(a record it refused) quarantine here, with ``stage`` saying which; one bad record never stops a run.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Boolean, Column, Integer, LargeBinary, String, Table, Text, and_, func, select, update
from sqlalchemy.engine import Connection

from storage.db import UTCDateTime, metadata, utcnow
from ..raw import QuarantinedItem
from .base import Store

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
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved", Boolean, nullable=False, default=False),
)

#: The longest record id kept (the ``local_id`` columns' length).
MAX_LOCAL_ID = 255


def printable(text: str) -> str:
    """``text`` without NULs, which PostgreSQL text columns refuse."""
    return text.replace("\x00", "\\0")


def add(conn: Connection, items: list[QuarantinedItem], run_id: int | None, now: datetime) -> None:
    """Quarantine items in the caller's transaction; one already there (same source, id, stage, reason
    and bytes) is only refreshed.

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
                source=item.source, stage=item.stage, reason=printable(item.reason),
                local_id=None if item.local_id is None else printable(item.local_id)[:MAX_LOCAL_ID],
                payload=item.payload, run_id=run_id, created_at=now, resolved=False))


class QuarantineStore(Store):
    """Read, add and resolve quarantined items."""

    def quarantine(self, items: Iterable[QuarantinedItem], run_id: int | None = None) -> int:
        items = list(items)
        if not items:
            return 0
        with self._lock, self.engine.begin() as conn:
            add(conn, items, run_id, utcnow())
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

    def quarantined_by_source(self) -> dict[str, int]:
        """source → unresolved quarantined items, in one query."""
        with self.engine.connect() as conn:
            return {s: int(n) for s, n in conn.execute(
                select(quarantine.c.source, func.count()).where(quarantine.c.resolved.is_(False))
                .group_by(quarantine.c.source))}

    def quarantined_item(self, item_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(quarantine).where(quarantine.c.id == item_id)).mappings().first()
        return None if row is None else dict(row)

    def resolve_quarantine(self, source: str, local_id: str, stage: str) -> None:
        """A record that now passes leaves quarantine (kept for history, flagged)."""
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(quarantine).where(and_(
                quarantine.c.source == source, quarantine.c.local_id == local_id,
                quarantine.c.stage == stage, quarantine.c.resolved.is_(False),
            )).values(resolved=True))
