"""Monthly snapshots of the contribution ledger (以贡献换服务), so a member's page shows its trend.

One row per (month, member) holds the ledger's figures as last computed in that month: the ledger job
(:func:`web.ledger_figures.refresh`) writes the current month's rows each time it runs (an upsert), so
the row of a past month is its last figures and the newest month's rows are the current snapshot the
pages show (:meth:`LedgerSnapshots.latest`, with when it was taken).  Counts only, per member library;
nothing about readers.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, Integer, String, Table, UniqueConstraint, func, select
from sqlalchemy.engine import Engine

from storage.db import UTCDateTime, metadata, upsert, utcnow

#: The figures kept per member and month, in the order the pages show them.
FIGURES = ("contributed", "original", "fresh_days", "downloaded_by_others", "ill_could_fill",
           "downloads_used", "ill_sent")

ledger_monthly = Table(
    "ledger_monthly",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),      # YYYY-MM
    Column("member", String(64), nullable=False),
    *[Column(name, Integer, nullable=name == "fresh_days") for name in FIGURES],  # fresh_days: None = never
    Column("taken_at", UTCDateTime, nullable=False),
    UniqueConstraint("month", "member", name="uq_ledger_month_member"),
)


class LedgerSnapshots:
    """Writing this month's figures and reading a member's months back."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def save(self, month: str, rows: Iterable[dict], taken_at: datetime | None = None) -> int:
        """Upsert ``month``'s row of every member in ``rows`` (dicts with ``member`` and :data:`FIGURES`)."""
        now, n = taken_at or utcnow(), 0
        with self.engine.begin() as conn:
            for row in rows:
                values = {"month": month, "member": row["member"], "taken_at": now,
                          **{f: row[f] for f in FIGURES}}
                upsert(conn, ledger_monthly, values, ("month", "member"))
                n += 1
        return n

    def history(self, member: str, months: int = 24) -> list[dict]:
        """``member``'s last ``months`` snapshots, oldest first."""
        m = ledger_monthly.c
        query = (select(m.month, *[m[f] for f in FIGURES]).where(m.member == member)
                 .order_by(m.month.desc()).limit(months))
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return rows[::-1]

    def taken_at(self) -> datetime | None:
        """When the current snapshot was taken (None before the first): is it time to compute again?"""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(ledger_monthly.c.taken_at))).scalar()

    def latest(self) -> tuple[str, datetime, dict[str, dict]] | None:
        """The current snapshot: (newest month, when it was taken, member → figures); None before the first."""
        m = ledger_monthly.c
        with self.engine.connect() as conn:
            month = conn.execute(select(func.max(m.month))).scalar()
            if month is None:
                return None
            rows = conn.execute(select(m.member, m.taken_at, *[m[f] for f in FIGURES])
                                .where(m.month == month)).mappings().all()
        taken = max(r["taken_at"] for r in rows)
        return month, taken, {r["member"]: {f: r[f] for f in FIGURES} for r in rows}
