"""Harvest runs (one row per run of one member) and the live-record count each run ended with.

The staff pages, ``/metrics``, the health rules (:mod:`harvester.health`) and the scheduler read
runs through :class:`RunStore`'s methods; nobody else queries these tables.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, and_, func, select, update

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

def distinct_sources(table: Table):
    """The distinct ``source`` values of ``table`` as a subquery, by a loose index scan.

    A recursive query steps from one source to the next through the table's (source, …) index: one
    seek per member instead of reading every row — at 1,300 members × a year of daily runs, 4 ms
    instead of 35 ms for ``SELECT DISTINCT`` (bench/staff.py; SQLite and PostgreSQL alike).
    """
    step = table.alias("step")
    found = select(func.min(table.c.source).label("source")).cte("sources", recursive=True)
    following = (select(step.c.source).where(step.c.source > found.c.source)
                 .order_by(step.c.source).limit(1).scalar_subquery())
    found = found.union_all(select(following).where(found.c.source.is_not(None)))
    return select(found.c.source).where(found.c.source.is_not(None)).subquery()


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

    def record_trend(self, limit: int = 20, sources: Iterable[str] | None = None) -> dict[str, list[int]]:
        """source → its live record counts after each of its last ``limit`` runs, oldest first (one query).

        Per source, the id of its ``limit``-th newest count is found through the (source, id) index and
        only the rows from there on are read: at 1,300 members × a year of daily runs a window over
        every row took seconds (bench/staff.py).  ``sources`` limits the answer to those members (the
        overview draws sparklines for its visible page only: 50 members, not 1,300).
        """
        rc, older = record_counts, record_counts.alias("older")
        members = distinct_sources(record_counts)
        floor = (select(older.c.id).where(older.c.source == members.c.source).order_by(older.c.id.desc())
                 .limit(1).offset(limit - 1).scalar_subquery())
        floors = select(members.c.source, func.coalesce(floor, 0).label("floor"))
        if sources is not None:
            wanted = sorted(set(sources))
            if not wanted:
                return {}
            floors = floors.where(members.c.source.in_(wanted))
        floors = floors.subquery()
        query = (select(rc.c.source, rc.c.records).select_from(floors)
                 .join(rc, and_(rc.c.source == floors.c.source, rc.c.id >= floors.c.floor))
                 .order_by(rc.c.source, rc.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
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
        runs = harvest_runs.alias("runs")
        sources = distinct_sources(harvest_runs)
        newest = select(select(func.max(runs.c.id)).where(runs.c.source == sources.c.source).correlate(sources)
                        .scalar_subquery()).select_from(sources)
        with self.engine.connect() as conn:  # one index seek per source, not a scan of every run
            rows = conn.execute(select(harvest_runs).where(harvest_runs.c.id.in_(newest))).mappings()
            return {r["source"]: dict(r) for r in rows}

    def runs_by_status(self) -> dict[tuple[str, str], int]:
        """(source, status) → number of runs, in one query (``/metrics``)."""
        with self.engine.connect() as conn:
            return {(s, status): int(n) for s, status, n in conn.execute(
                select(harvest_runs.c.source, harvest_runs.c.status, func.count())
                .group_by(harvest_runs.c.source, harvest_runs.c.status))}

    def success_streaks(self) -> tuple[dict[str, datetime], dict[str, int]]:
        """(source → start of its newest successful run, source → failed runs since then), one query.

        The health rules' facts: how fresh a member is and how many harvests in a row failed.
        """
        good_runs, newer, at = harvest_runs.alias("good"), harvest_runs.alias("newer"), harvest_runs.alias("at")
        sources = distinct_sources(harvest_runs)
        good = (select(func.max(good_runs.c.id))
                .where(good_runs.c.source == sources.c.source, good_runs.c.status.in_(GOOD)).scalar_subquery())
        per_source = select(sources.c.source, good.label("id")).subquery()
        good_at = select(at.c.started_at).where(at.c.id == per_source.c.id).scalar_subquery()
        failed = (select(func.count()).select_from(newer)
                  .where(newer.c.source == per_source.c.source, newer.c.status == "failed",
                         newer.c.id > func.coalesce(per_source.c.id, 0)).scalar_subquery())
        last_ok: dict[str, datetime] = {}
        failures: dict[str, int] = {}
        with self.engine.connect() as conn:  # index seeks per source: (source, status, id)
            for source, started, n in conn.execute(select(per_source.c.source, good_at, failed)):
                if started is not None:
                    last_ok[source] = started
                if n:
                    failures[source] = int(n)
        return last_ok, failures
