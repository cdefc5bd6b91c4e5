"""Usage statistics (用户使用情况统计, 文献利用率统计): counts per day, never people.

A row is (day, event, reader's member library, holding member library, record, count).  There is no
column for an IP address, a session, a user name or a reader id, so none can be stored; the reader's
library is the member the reader chose as home (or signed on through), when known.

Counting is batched: :class:`UsageCounter` adds to a dict in memory (a lock and an increment per
event, on the request's thread) and a background thread writes the sums every ``interval`` seconds in
one transaction of upserts, so a search never waits for the database (BENCHMARKS.md: search p95 with
statistics on and off).  ``flush()`` writes now (the staff pages call it before reading).
"""
from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter
from datetime import date, datetime, timezone
from typing import Mapping

from sqlalchemy import Column, Date, Integer, String, Table, UniqueConstraint, func, select
from sqlalchemy.engine import Engine

from storage.db import metadata, upsert

log = logging.getLogger(__name__)

#: The events counted; the staff page and /metrics name them in this order.
EVENTS = ("search", "record_view", "download", "basket_export", "oai_record", "api_record", "opac_click",
          "ill_request")

usage_daily = Table(
    "usage_daily",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("event", String(24), nullable=False),
    Column("reader_library", String(64), nullable=False, default=""),   # "" = not known
    Column("holding_library", String(64), nullable=False, default=""),  # "" = not about one member
    Column("record", String(64), nullable=False, default=""),           # catalogue entry id, "" = none
    Column("count", Integer, nullable=False, default=0),
    UniqueConstraint("day", "event", "reader_library", "holding_library", "record", name="uq_usage_daily"),
)

#: Records served by OAI-PMH or the API are counted twice over: once as the event (how many records
#: went out) and, stored under these names, once per member holding each record (how many of *its*
#: records went out: the ledger's "harvested by others").  Apart, neither count inflates the other.
HELD = {"oai_record": "oai_held", "api_record": "api_held"}
_BASE = {held: event for event, held in HELD.items()}

Key = tuple[date, str, str, str, str]
KEYS = ("day", "event", "reader_library", "holding_library", "record")


class UsageCounter:
    """Counts in memory, written in batches by a daemon thread (or by ``flush``)."""

    def __init__(self, engine: Engine, interval: float = 5.0):
        self.engine, self.interval = engine, interval
        self._pending: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def count(self, event: str, *, reader_library: str | None = None, holding_library: str | None = None,
              record: str | None = None, n: int = 1) -> None:
        """Add ``n`` to today's count of ``event`` (one of :data:`EVENTS`)."""
        self.count_many(event, {holding_library or "": n}, reader_library=reader_library, record=record)

    def count_many(self, event: str, per_holding: Mapping[str, int], *, reader_library: str | None = None,
                   record: str | None = None) -> None:
        """Add to today's counts of ``event`` for several holding libraries under one lock (an OAI-PMH page)."""
        if event not in EVENTS and event not in _BASE:
            raise ValueError(f"unknown usage event {event!r}; expected one of {', '.join(EVENTS)}")
        day, reader, rec = datetime.now(timezone.utc).date(), reader_library or "", record or ""
        with self._lock:
            for holding, n in per_holding.items():
                self._pending[(day, event, reader, holding, rec)] += n

    def flush(self) -> int:
        """Write what was counted since the last flush; returns the number of rows touched."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return 0
        try:
            with self.engine.begin() as conn:
                for key, n in pending.items():
                    values = dict(zip(KEYS, key), count=n)
                    upsert(conn, usage_daily, values, KEYS, {"count": usage_daily.c.count + n})
        except Exception:
            with self._lock:  # kept for the next flush: a busy database loses no counts
                self._pending.update(pending)
            raise
        return len(pending)

    def totals(self) -> dict[str, int]:
        """Event → count not yet written (``/metrics`` adds it to the stored totals)."""
        with self._lock:
            out: Counter[str] = Counter()
            for key, n in self._pending.items():
                out[key[1]] += n
        return dict(out)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - a statistics write must never kill the thread
                # once per outage, not every few seconds: the counts are kept and the next try is quiet
                (log.debug if failing else log.warning)(
                    "usage statistics: writing the counts failed (%s); kept for the next try", exc)
                failing = True
            else:
                if failing:
                    log.warning("usage statistics: writing the counts works again")
                failing = False

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - at exit the database may be gone
            pass


class UsageStore:
    """Reading the counts: per month, per member, top records, and the rows for a download."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def per_month(self) -> dict[str, dict[str, int]]:
        """``YYYY-MM`` → event → count, oldest month first."""
        month = func.substr(func.cast(usage_daily.c.day, String), 1, 7)
        query = (select(month, usage_daily.c.event, func.sum(usage_daily.c.count))
                 .group_by(month, usage_daily.c.event).order_by(month))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for m, event, n in conn.execute(query):
                out.setdefault(m, {})[event] = int(n)
        return out

    def per_member(self, column: str) -> dict[str, dict[str, int]]:
        """member (``reader_library`` or ``holding_library``) → event → count; unknown members left out.

        Per holding library, ``oai_record``/``api_record`` are the member's share (:data:`HELD`): the
        records of it served."""
        col = usage_daily.c[column]
        query = (select(col, usage_daily.c.event, func.sum(usage_daily.c.count)).where(col != "")
                 .group_by(col, usage_daily.c.event))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for member, event, n in conn.execute(query):
                if column == "reader_library" and event in _BASE:
                    continue  # a reader's records served are counted once, under the event itself
                counts = out.setdefault(member, {})
                event = _BASE.get(event, event)  # per holding library, a member's share is the event
                counts[event] = counts.get(event, 0) + int(n)
        return out

    def totals(self) -> dict[str, int]:
        """Event → count over all days (the Prometheus counters)."""
        query = select(usage_daily.c.event, func.sum(usage_daily.c.count)).group_by(usage_daily.c.event)
        with self.engine.connect() as conn:
            return {event: int(n) for event, n in conn.execute(query)}

    def sums(self, events: tuple[str, ...]) -> list[tuple[str, str, str, str, int]]:
        """(event, reader library, holding library, record, count) summed over every day (the ledger)."""
        u = usage_daily.c
        query = (select(u.event, u.reader_library, u.holding_library, u.record, func.sum(u.count))
                 .where(u.event.in_(events)).group_by(u.event, u.reader_library, u.holding_library, u.record))
        with self.engine.connect() as conn:
            return [(e, r, h, rec, int(n)) for e, r, h, rec, n in conn.execute(query)]

    def top_records(self, limit: int = 20) -> list[tuple[str, int]]:
        """The most viewed or downloaded catalogue entries: (entry id, count)."""
        total = func.sum(usage_daily.c.count).label("n")
        query = (select(usage_daily.c.record, total).where(usage_daily.c.record != "")
                 .group_by(usage_daily.c.record).order_by(total.desc(), usage_daily.c.record).limit(limit))
        with self.engine.connect() as conn:
            return [(r, int(n)) for r, n in conn.execute(query)]

    def rows(self) -> list[dict]:
        """Every daily count (the CSV/JSON download), oldest first."""
        query = select(*[usage_daily.c[k] for k in KEYS], usage_daily.c.count).order_by(
            usage_daily.c.day, usage_daily.c.event, usage_daily.c.id)
        with self.engine.connect() as conn:
            return [{**dict(r), "day": r["day"].isoformat()} for r in conn.execute(query).mappings()]
