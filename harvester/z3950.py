"""Harvesting Z39.50 and SRU members through YAZ's ZOOM API (:mod:`harvester.zoom`).

Z39.50 has no "list everything" verb and no deletion feed, so a harvest is a series of searches:

* **full** — the source's ``query`` (one PQF query, or a list of them, e.g. by year ranges or class
  letters, to stay under a server's result-set limit; CQL for SRU), every hit fetched with batched
  present requests of ``batch_size``; records not seen by a full harvest are marked deleted —
  unless the harvest saw far fewer records than the store holds (``max_shrink``, default 20 %, or
  ``max_deletions``): then a broken server is the likelier story and the deletions are held for a
  member of staff's approval (:mod:`harvester.safety`, the same stop for every protocol);
* **incremental** — ``incremental: modified`` (Bib-1 1012 ≥ the high water, the newest 005 seen)
  or ``incremental: year`` (date of publication ≥ the high-water year), or an own
  ``incremental_query`` template with ``{from}`` (yyyymmdd), ``{from_iso}`` (yyyy-mm-dd),
  ``{from_full}`` (yyyymmddhhmmss) or ``{year}``;
* **lookup** — ``ids``: a list of identifiers, each searched with ``lookup_query`` (``{id}``).

Every batch is committed with a checkpoint (``Checkpoint.state``: which query, which offset, the
result-set size), so a killed harvest resumes at the next batch without storing anything twice.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from consortium.config import Source
from storage.db import utcnow
from .raw import RawRecord
from .safety import end_full_harvest, limits
from .store import Checkpoint, QuarantinedItem
from .zoom import Connection, Record, ZoomConnectError, ZoomError, ZoomTimeout

if TYPE_CHECKING:
    from .harvest import HarvestReport, _Run

log = logging.getLogger(__name__)

DEFAULT_QUERY = {"z3950": '@attr 1=_ALLRECORDS @attr 2=103 ""', "sru": "cql.allRecords=1"}
INCREMENTAL = {
    "z3950": {"modified": "@attr 1=1012 @attr 2=4 @attr 4=109 {from}",
              "year": "@attr 1=31 @attr 2=4 @attr 4=109 {year}"},
    "sru": {"modified": "rec.lastModificationDate>={from_iso}", "year": "dc.date>={year}"},
}
LOOKUP = {"z3950": '@attr 1=12 "{id}"', "sru": 'rec.id="{id}"'}
DEFAULT_BATCH = 100
XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>\s*")
CONTROL_001 = re.compile(rb'<(?:\w+:)?controlfield[^>]*\btag="001"[^>]*>([^<]*)<')
CONTROL_005 = re.compile(rb'<(?:\w+:)?controlfield[^>]*\btag="005"[^>]*>([^<]*)<')
TRANSIENT = (ZoomConnectError, ZoomTimeout)


@dataclass
class Plan:
    kind: str  # full | incremental | lookup
    queries: list[str]
    cql: bool


def queries_for(source: Source) -> list[str]:
    value = source.options.get("query", DEFAULT_QUERY[source.protocol])
    return [value] if isinstance(value, str) else [str(q) for q in value]


def plan(source: Source, full: bool, high_water: str | None) -> Plan:
    """What a run searches for: the full queries, the incremental one, or one lookup per id."""
    cql = source.protocol == "sru"
    opts = source.options
    ids = opts.get("ids")
    if ids:
        template = opts.get("lookup_query", LOOKUP[source.protocol])
        return Plan("lookup", [template.replace("{id}", _escape(str(i), cql)) for i in ids], cql)
    mode = opts.get("incremental", "none")
    template = opts.get("incremental_query") or INCREMENTAL[source.protocol].get(mode)
    if full or not template or not high_water or mode == "none" and not opts.get("incremental_query"):
        return Plan("full", queries_for(source), cql)
    hw = (high_water + "0" * 14)[:14]
    values = {"from": hw[:8], "from_iso": f"{hw[:4]}-{hw[4:6]}-{hw[6:8]}", "from_full": hw, "year": hw[:4]}
    query = template
    for key, value in values.items():
        query = query.replace("{" + key + "}", value)
    return Plan("incremental", [query], cql)


def _escape(value: str, cql: bool) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def connect(source: Source, env: Mapping[str, str] | None = None, timeout: float | None = None) -> Connection:
    """A ZOOM connection set up from the source's keys (raises :class:`ZoomError` / ``YazMissing``)."""
    opts = source.options
    password = None
    if opts.get("password_env"):
        password = (env or {}).get(opts["password_env"])
        if password is None:
            raise ZoomError(0, f"password_env {opts['password_env']!r} is not set in the harvester's "
                               "environment", diagset="unioncat")
    syntax = opts.get("syntax") or ("unimarc" if source.format in ("unimarc", "cnmarc") else "usmarc")
    return Connection(
        source.url, database=opts.get("database"), syntax="xml" if source.protocol == "sru" else syntax,
        element_set=opts.get("element_set"), charset=opts.get("charset"),
        query_charset=opts.get("query_charset", opts.get("charset")),
        user=opts.get("user"), password=password, timeout=source.timeout if timeout is None else timeout,
        batch_size=int(opts.get("batch_size", DEFAULT_BATCH)),
        sru=opts.get("sru", "get") if source.protocol == "sru" else None,
        sru_version=str(opts["sru_version"]) if opts.get("sru_version") else None,
        record_schema=opts.get("record_schema", "marcxml") if source.protocol == "sru" else None,
    )


# -- records ---------------------------------------------------------------------------
def iso2709_field(data: bytes, tag: bytes) -> bytes | None:
    """The value of control field ``tag`` of an ISO 2709 record (no decoding), or None."""
    try:
        base = int(data[12:17])
        directory = data[24:base - 1]
        for i in range(0, len(directory) - 11, 12):
            if directory[i:i + 3] == tag:
                length, start = int(directory[i + 3:i + 7]), int(directory[i + 7:i + 12])
                return data[base + start:base + start + length].rstrip(b"\x1e\x1d")
    except ValueError:
        return None
    return None


def to_raw(source: Source, rec: Record) -> RawRecord | QuarantinedItem:
    data = rec.data
    if rec.syntax == "xml" or source.protocol == "sru":
        data = XML_DECL.sub(b"", data, count=1)
        m = CONTROL_001.search(data)
        local_id = m.group(1).strip() if m else None
        m5 = CONTROL_005.search(data)
        stamp = m5.group(1).strip() if m5 else None
        syntax = "marcxml"
    else:
        if len(data) < 25 or not data[:5].isdigit():
            return QuarantinedItem(source.id, None, f"hit {rec.position}: not an ISO 2709 record", data)
        local_id = iso2709_field(data, b"001")
        local_id = local_id.strip() if local_id else None
        stamp = iso2709_field(data, b"005")
        syntax = "iso2709"
    if not local_id:
        return QuarantinedItem(source.id, None, f"hit {rec.position}: no 001 (record id)", data)
    try:
        text_id = local_id.decode("utf-8")
    except UnicodeDecodeError:
        text_id = local_id.decode("latin-1")
    datestamp = stamp.decode("ascii", "replace").strip()[:32] if stamp else None
    return RawRecord(source=source.id, local_id=text_id[:255], payload=data, syntax=syntax, format=source.format,
                     datestamp=datestamp)


def _stamp14(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")[:14]
    return digits.ljust(14, "0") if len(digits) >= 8 else None


def _later(a: str | None, b: str | None) -> str | None:
    return max((x for x in (a, b) if x), default=None)


# -- the harvest ------------------------------------------------------------------------
def harvest_zoom(run: "_Run", full: bool, env: Mapping[str, str] | None = None) -> "HarvestReport":
    from .harvest import _fresh_start

    source, store = run.source, run.store
    cp = store.checkpoint(source.id)
    state = _state(cp)
    store.interrupt_stale_runs(source.id)
    if state is not None and (not full or state["kind"] == "full"):
        work = Plan(state["kind"], state["queries"], source.protocol == "sru")
        since = cp.resume_started
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        high = cp.resume_high_water
        log.info("%s: resuming the interrupted %s harvest at query %d, hit %d", source.id, work.kind,
                 state["query"] + 1, state["offset"] + 1)
        run.run_id = store.start_run(source.id, source.protocol, work.kind == "full", cp.high_water, resumed=True)
    else:
        work = plan(source, full, cp.high_water)
        state = {"kind": work.kind, "queries": work.queries, "query": 0, "offset": 0, "size": None}
        since = _fresh_start(store, source.id) if work.kind == "full" else utcnow()
        high = None
        run.run_id = store.start_run(source.id, source.protocol, work.kind == "full",
                                     cp.high_water if work.kind == "incremental" else None)
        log.info("%s: %s harvest of %s: %d quer%s", source.id, work.kind, source.url, len(work.queries),
                 "y" if len(work.queries) == 1 else "ies")
    started = utcnow()
    conn = None
    try:
        conn = connect(source, env)
        high = _run_queries(run, conn, work, state, cp.high_water, since, high)
    finally:
        if conn is not None:
            conn.close()
    if work.kind == "full":
        end_full_harvest(run, since)
    high_water = _later(cp.high_water, high)
    if high_water is None and work.kind != "lookup":
        high_water = started.strftime("%Y%m%d%H%M%S")
    store.save_checkpoint(Checkpoint(source.id, high_water=high_water))
    return run.finish("ok", high_water=high_water)


def _state(cp: Checkpoint) -> dict | None:
    if not cp.in_progress or not cp.state:
        return None
    try:
        state = json.loads(cp.state)
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("protocol") == "zoom" else None


def _run_queries(run: "_Run", conn: Connection, work: Plan, state: dict, old_high: str | None,
                 since: datetime | None, high: str | None) -> str | None:
    source, store = run.source, run.store
    batch = int(source.options.get("batch_size", DEFAULT_BATCH))
    retries, broken = 0, False
    while state["query"] < len(work.queries):
        query = work.queries[state["query"]]
        try:
            if broken:
                conn.reconnect()
                broken = False
            rs = conn.search(query, cql=work.cql, piggyback=min(batch, 50) if state["offset"] == 0 else 0)
            with rs:
                size = rs.size
                if state["size"] is not None and state["offset"] and size != state["size"]:
                    log.warning("%s: query %d now finds %d records (was %d); fetching it again from the "
                                "start", source.id, state["query"] + 1, size, state["size"])
                    state["offset"] = 0
                state["size"] = size
                log.debug("%s: query %r: %d hits", source.id, query, size)
                if work.kind == "lookup" and size == 0:
                    log.info("%s: lookup %r found nothing", source.id, query)
                while state["offset"] < size:
                    got = rs.records(state["offset"], batch)
                    records, bad = [], []
                    for item in got:
                        if isinstance(item, ZoomError):
                            bad.append(QuarantinedItem(source.id, None, f"query {query!r}: {item}"))
                            continue
                        raw = to_raw(source, item)
                        if isinstance(raw, QuarantinedItem):
                            bad.append(raw)
                        else:
                            records.append(raw)
                            high = _later(high, _stamp14(raw.datestamp))
                    state["offset"] += max(len(got), 1)
                    checkpoint = Checkpoint(source.id, high_water=old_high, resume_full=work.kind == "full",
                                            resume_started=since, resume_high_water=high,
                                            state=json.dumps({**state, "protocol": "zoom"}))
                    counts = store.apply(records, run.run_id, checkpoint=checkpoint, bad=bad)
                    run.committed(counts, len(records))
                    retries = 0
                    if source.delay:
                        time.sleep(source.delay)
        except TRANSIENT as exc:
            if retries >= source.max_retries:
                raise
            retries += 1
            wait = min(2.0 ** (retries - 1), source.retry_after_max)
            log.warning("%s: %s; reconnecting in %.1f s (retry %d of %d)", source.id, exc, wait, retries,
                        source.max_retries)
            time.sleep(wait)
            broken = True
            continue
        state["query"] += 1
        state["offset"], state["size"] = 0, None
    return high


def max_shrink(source: Source) -> float:
    return limits(source)[0]
