"""Harvest runs (one row per run of one member) and the live-record count each run ended with.

The staff pages, ``/metrics``, the health rules (:mod:`harvester.health`) and the scheduler read
runs through :class:`RunStore`'s methods; nobody else queries these tables.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, func, select, update

from storage.db import UTCDateTime, metadata, utcnow
from .base import Store
from .records import Counts, live_count

harvest_runs = Table(
    "harvest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("protocol", String(16), nullable=False, default=""),
    Column("full", Boolean, nullable=False, default=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(16), nullable=False),  # running, ok, held, failed, interrupted
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

record_counts = Table(
    "record_counts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("run_id", Integer),
    Column("at", UTCDateTime, nullable=False),
    Column("records", Integer, nullable=False),  # live records of the source when the run ended
)
Index("ix_record_counts_source_id", record_counts.c.source, record_counts.c.id)
Index("ix_runs_source_status_id", harvest_runs.c.source, harvest_runs.c.status, harvest_runs.c.id)

#: Run statuses that count as a successful harvest (``held``: records taken, deletions held for approval).
GOOD = ("ok", "held")


class RunStore(Store):
    """Start, finish and read harvest runs."""

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
            conn.execute(record_counts.insert().values(source=source, run_id=run_id, at=now,
                                                       records=live_count(conn, source)))

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

    def runs_by_status(self) -> dict[tuple[str, str], int]:
        """(source, status) → number of runs, in one query (``/metrics``)."""
        with self.engine.connect() as conn:
            return {(s, status): int(n) for s, status, n in conn.execute(
                select(harvest_runs.c.source, harvest_runs.c.status, func.count())
                .group_by(harvest_runs.c.source, harvest_runs.c.status))}

    def success_streaks(self) -> tuple[dict[str, datetime], dict[str, int]]:
        """(source → start of its newest successful run, source → failed runs since then), two grouped queries.

        The health rules' facts: how fresh a member is and how many harvests in a row failed.
        """
        runs = harvest_runs
        last_good = (select(runs.c.source, func.max(runs.c.id).label("id"), func.max(runs.c.started_at).label("at"))
                     .where(runs.c.status.in_(GOOD)).group_by(runs.c.source).subquery())
        with self.engine.connect() as conn:
            last_ok = {s: t for s, t in conn.execute(select(last_good.c.source, last_good.c.at))}
            failures = {s: int(n) for s, n in conn.execute(
                select(runs.c.source, func.count())
                .select_from(runs.outerjoin(last_good, last_good.c.source == runs.c.source))
                .where(runs.c.status == "failed", runs.c.id > func.coalesce(last_good.c.id, 0))
                .group_by(runs.c.source))}
        return last_ok, failures
