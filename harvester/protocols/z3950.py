"""Harvesting a Z39.50 or SRU member through YAZ's ZOOM API: ``ZoomHarvest``.

A run is a series of searches (:mod:`harvester.protocols.zoom_plan`: full, incremental or lookup).
Every present request's batch is committed with a checkpoint (``Checkpoint.state``: which query,
which offset, the result-set size), so a killed harvest resumes at the next batch without storing
anything twice.  A dropped connection or a timeout reconnects under the harvester's one retry
policy.  A full harvest ends like every other: records not seen are deleted, or held for approval
when they are too many (:mod:`harvester.safety`).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

from consortium.config import Source
from storage.db import utcnow
from ..clients.zoom import Connection, ResultSet, ZoomError
from ..retry import TRANSIENT, RetryPolicy
from ..raw import QuarantinedItem
from ..run import Run
from ..stores.checkpoints import Checkpoint
from .zoom_plan import DEFAULT_BATCH, Plan, connect, plan, stamp14, to_raw

log = logging.getLogger(__name__)


def _later(a: str | None, b: str | None) -> str | None:
    return max((x for x in (a, b) if x), default=None)


def _state(cp: Checkpoint) -> dict | None:
    """The interrupted run's position, if the checkpoint holds one of ours."""
    if not cp.in_progress or not cp.state:
        return None
    try:
        state = json.loads(cp.state)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("protocol") == "zoom" else None


class ZoomHarvest:
    """Search, then fetch every hit in batched present requests, query after query."""

    def __init__(self, source: Source, env: Mapping[str, str] | None = None):
        self.source, self.env = source, env
        self._retries = 0  # reconnections since the last committed batch
        self.batch = int(source.options.get("batch_size", DEFAULT_BATCH))
        self.retry = RetryPolicy(source.max_retries, max_wait=source.retry_after_max)

    def harvest(self, run: Run) -> str | None:
        source, cp = self.source, run.checkpoint
        state = _state(cp)
        if state is not None and (not run.full_requested or state["kind"] == "full"):
            work = Plan(state["kind"], state["queries"], source.protocol == "sru")
            high = cp.resume_high_water
            log.info("%s: resuming the interrupted %s harvest at query %d, hit %d", source.id, work.kind,
                     state["query"] + 1, state["offset"] + 1)
            run.begin(work.kind == "full", cp.high_water, since=cp.resume_started, resumed=True)
        else:
            work = plan(source, run.full_requested, cp.high_water)
            state = {"kind": work.kind, "queries": work.queries, "query": 0, "offset": 0, "size": None}
            high = None
            run.begin(work.kind == "full", cp.high_water if work.kind == "incremental" else None)
            log.info("%s: %s harvest of %s: %d quer%s", source.id, work.kind, source.url, len(work.queries),
                     "y" if len(work.queries) == 1 else "ies")
        started = utcnow()
        conn = connect(source, self.env)
        try:
            high = self._queries(run, conn, work, state, high)
        finally:
            conn.close()
        high_water = _later(cp.high_water, high)
        if high_water is None and work.kind != "lookup":
            high_water = started.strftime("%Y%m%d%H%M%S")
        return high_water

    def _queries(self, run: Run, conn: Connection, work: Plan, state: dict, high: str | None) -> str | None:
        """Run every query from the state's position; a dropped connection reconnects and goes on."""
        self._retries, broken = 0, False
        while state["query"] < len(work.queries):
            try:
                if broken:
                    conn.reconnect()
                    broken = False
                high = self._query(run, conn, work, state, high)
            except TRANSIENT as exc:
                if self._retries >= self.retry.max_retries:
                    raise
                wait = self.retry.wait(self._retries)
                self._retries += 1
                log.warning("%s: %s; reconnecting in %.1f s (retry %d of %d)", self.source.id, exc, wait,
                            self._retries, self.retry.max_retries)
                time.sleep(wait)
                broken = True
                continue
            state["query"] += 1
            state["offset"], state["size"] = 0, None
        return high

    def _query(self, run: Run, conn: Connection, work: Plan, state: dict, high: str | None) -> str | None:
        """Search the state's query and commit its hits batch by batch from the state's offset."""
        source, query = self.source, work.queries[state["query"]]
        rs = conn.search(query, cql=work.cql, piggyback=min(self.batch, 50) if state["offset"] == 0 else 0)
        with rs:
            size = rs.size
            if state["size"] is not None and state["offset"] and size != state["size"]:
                log.warning("%s: query %d now finds %d records (was %d); fetching it again from the start",
                            source.id, state["query"] + 1, size, state["size"])
                state["offset"] = 0
            state["size"] = size
            log.debug("%s: query %r: %d hits", source.id, query, size)
            if work.kind == "lookup" and size == 0:
                log.info("%s: lookup %r found nothing", source.id, query)
            while state["offset"] < size:
                high = self._batch(run, rs, query, state, high)
                self._retries = 0
                if source.delay:
                    time.sleep(source.delay)
        return high

    def _batch(self, run: Run, rs: ResultSet, query: str, state: dict, high: str | None) -> str | None:
        """One present request, committed with the position after it."""
        got = rs.records(state["offset"], self.batch)
        records, bad = [], []
        for item in got:
            raw = QuarantinedItem(self.source.id, None, f"query {query!r}: {item}") if isinstance(item, ZoomError) \
                else to_raw(self.source, item)
            if isinstance(raw, QuarantinedItem):
                bad.append(raw)
            else:
                records.append(raw)
                high = _later(high, stamp14(raw.datestamp))
        state["offset"] += max(len(got), 1)
        run.commit(records, bad, resume=dict(resume_high_water=high, state=json.dumps({**state, "protocol": "zoom"})))
        return high
