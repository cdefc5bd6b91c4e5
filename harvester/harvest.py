"""Harvest one member into the raw store: ``harvest_source``.

A harvest of 130 members must survive any one of them misbehaving, and a
harvest of one large member must survive the harvester being killed.  So:

* every source-level failure ends the run with status ``failed`` and a
  message naming the source and URL — :func:`harvest_source` never raises for
  them (only KeyboardInterrupt/SystemExit propagate);
* every OAI-PMH page is committed together with the resumption token of the
  next page, so a killed harvest resumes at the next page, with no record
  lost or stored twice;
* a *full* harvest (``--full``, a first harvest, or a file dump, which is a
  snapshot) ends by marking deleted whatever the member did not send, since
  many ILSs (Alma) forget deletions after a while.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests

from consortium.config import Source
from storage.db import utcnow
from .files import DumpError, StreamBroken, read_path
from .oai import BadResumptionToken, HarvestError, OAIClient, format_datestamp, later
from .raw import RawRecord
from .safety import end_full_harvest, end_harvest
from .store import Checkpoint, Counts, QuarantinedItem, RawStore
from .xmlsafe import XMLError
from .zoom import YazMissing, ZoomError

log = logging.getLogger(__name__)

FILE_BATCH = 500
#: Failures that are the member's (or the network's), reported without a traceback.
EXPECTED = (HarvestError, DumpError, XMLError, OSError, requests.RequestException, ZoomError, YazMissing)


@dataclass
class HarvestProgress:
    """Reported after each committed page (OAI) or batch (files).

    ``page`` counts pages committed so far in this run; ``records`` (records
    and deletion notices taken so far) and ``counts`` are cumulative for the run.
    """

    source: str
    page: int
    records: int
    counts: Counts


@dataclass
class HarvestReport:
    """How one run of one source ended."""

    source: str
    run_id: int | None
    status: str  # 'ok' | 'held' (records taken, deletions held for approval) | 'failed'
    counts: Counts = field(default_factory=Counts)
    error: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    duration: float = 0.0
    high_water: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "held")


ProgressFn = Callable[[HarvestProgress], None]


class _Run:
    """Bookkeeping shared by every protocol: counts, pages, timing, the report."""

    def __init__(self, source: Source, store: RawStore, progress: ProgressFn | None):
        self.source, self.store, self.progress = source, store, progress
        self.counts = Counts()
        self.pages = 0
        self.records = 0
        self.run_id: int | None = None
        self.held: str | None = None  # why a full harvest's deletions were held for approval
        self.started = utcnow()
        self._clock = time.monotonic()

    def committed(self, counts: Counts, records: int) -> None:
        self.counts += counts
        self.pages += 1
        self.records += records
        if self.progress is not None:
            self.progress(HarvestProgress(self.source.id, self.pages, self.records,
                                          Counts(**self.counts.as_dict())))

    def finish(self, status: str, error: str | None = None, high_water: str | None = None) -> HarvestReport:
        if status == "ok" and self.held:
            status, error = "held", self.held
        if self.run_id is not None:
            self.store.finish_run(self.run_id, status, self.counts, error=error, high_water=high_water)
        finished = utcnow()
        if status in ("ok", "held"):
            log.info("%s: harvest ok: %s", self.source.id, self.counts.as_dict())
        else:
            log.error("%s: harvest failed: %s", self.source.id, error)
        return HarvestReport(source=self.source.id, run_id=self.run_id, status=status,
                             counts=self.counts, error=error, started=self.started, finished=finished,
                             duration=round(time.monotonic() - self._clock, 3), high_water=high_water)

    def failed(self, exc: BaseException) -> HarvestReport:
        where = self.source.url or (str(self.source.path) if self.source.path else None)
        message = str(exc) or type(exc).__name__
        if where and where not in message:
            message = f"{where}: {message}"
        return self.finish("failed", f"source {self.source.id!r}: {message}")

    def interrupted(self, exc: BaseException) -> None:
        """Record a Ctrl-C / exit on the run row (best effort; the checkpoint is already safe)."""
        if self.run_id is None:
            return
        try:
            self.store.finish_run(self.run_id, "interrupted", self.counts,
                                  error=f"interrupted ({type(exc).__name__}); the next run resumes it")
        except Exception:  # noqa: BLE001 - never hide the interrupt behind a bookkeeping error
            log.exception("%s: could not mark the run interrupted", self.source.id)


def harvest_source(source: Source, store: RawStore, full: bool = False, progress: ProgressFn | None = None,
                   session: requests.Session | None = None, env: Mapping[str, str] | None = None) -> HarvestReport:
    """Harvest ``source`` into ``store`` and report how it went (never raises for source failures).

    ``env`` holds the secrets that ``password_env`` keys name (the command line passes the process environment:
    library packages never read the environment themselves).
    """
    run = _Run(source, store, progress)
    try:
        if source.protocol == "oai":
            return _harvest_oai(run, full, session)
        if source.protocol == "file":
            return _harvest_file(run)
        if source.protocol in ("z3950", "sru"):
            from .z3950 import harvest_zoom
            return harvest_zoom(run, full, env)
        run.run_id = store.start_run(source.id, source.protocol, full, None)
        return run.finish("failed", f"source {source.id!r}: protocol {source.protocol!r} is not supported yet")
    except (KeyboardInterrupt, SystemExit) as exc:
        run.interrupted(exc)
        raise
    except Exception as exc:  # noqa: BLE001 - one member's failure must not stop the others
        if not isinstance(exc, EXPECTED):
            log.exception("%s: unexpected error", source.id)  # a bug: keep the traceback
        if run.run_id is None:
            run.run_id = store.start_run(source.id, source.protocol, full, None)
        return run.failed(exc)


def _fresh_start(store: RawStore, source_id: str) -> datetime:
    """A start time strictly after every ``seen_at`` of this source.

    ``seen_at`` has one-second resolution: a full run starting in the same
    second as the previous run ended would otherwise not recognise the
    previous run's records as "not seen since", and miss deletions.
    """
    last = store.last_seen(source_id)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    now = utcnow()
    while last is not None and now <= last:
        time.sleep(0.05)
        now = utcnow()
    return now


# -- OAI-PMH ---------------------------------------------------------------------
def _harvest_oai(run: _Run, full: bool, session: requests.Session | None) -> HarvestReport:
    source, store = run.source, run.store
    cp = store.checkpoint(source.id)
    resume = cp.in_progress and (not full or cp.resume_full)
    client = OAIClient(source, session=session)
    try:
        if resume:
            from_, full_run, token, high = cp.resume_from, cp.resume_full, cp.resume_token, cp.resume_high_water
            since = cp.resume_started
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
            log.info("%s: resuming the interrupted run at %s", source.id,
                     f"token {token!r}" if token else f"from {from_ or 'the beginning'}")
            store.interrupt_stale_runs(source.id)
        else:
            store.interrupt_stale_runs(source.id)
            start = None if full else (cp.high_water or source.options.get("from"))
            full_run = start is None
            token, high = None, None
            info = client.identify()
            from_ = format_datestamp(str(start), info.granularity) if start else None
            run.run_id = store.start_run(source.id, "oai", full_run, from_)
            since = _fresh_start(store, source.id) if full_run else utcnow()
            log.info("%s: %s harvest of %s (granularity %s)%s", source.id, "full" if full_run else "incremental",
                     info.repository_name or source.url, info.granularity, f" from {from_}" if from_ else "")
            store.save_checkpoint(Checkpoint(source.id, high_water=cp.high_water, resume_from=from_,
                                             resume_full=full_run, resume_started=since))
        if run.run_id is None:
            run.run_id = store.start_run(source.id, "oai", full_run, from_, resumed=True)
        high = _list_pages(run, client, cp.high_water, from_, full_run, since, token, high)
        end_harvest(run, since, full=full_run)
        high_water = later(cp.high_water, high)
        store.save_checkpoint(Checkpoint(source.id, high_water=high_water))
        return run.finish("ok", high_water=high_water)
    finally:
        if session is None:
            client.close()


def _list_pages(run: _Run, client: OAIClient, old_high: str | None, from_: str | None, full_run: bool,
                since: datetime | None, token: str | None, high: str | None) -> str | None:
    """Fetch and commit every page; returns the highest datestamp seen.

    An expired or unknown resumption token (FOLIO forgets them after 24 h)
    restarts the list once from the run's own ``from``: pages already stored
    come again and count as unchanged.
    """
    restarted = False
    while True:
        try:
            for page in client.list_records(from_=from_, token=token):
                high = later(high, page.high_water)
                checkpoint = Checkpoint(run.source.id, high_water=old_high, resume_token=page.token,
                                        resume_from=from_, resume_full=full_run, resume_started=since,
                                        resume_high_water=high)
                counts = run.store.apply(page.records, run.run_id, checkpoint=checkpoint, bad=page.quarantined,
                                         defer_deletions=True)
                run.committed(counts, len(page.records))
                log.debug("%s: page %d: %s", run.source.id, page.number, counts.as_dict())
            return high
        except BadResumptionToken as exc:
            if restarted or token is None:
                raise
            log.warning("%s: %s; restarting from %s", run.source.id, exc, from_ or "the beginning")
            restarted, token = True, None


# -- files ------------------------------------------------------------------------
def _harvest_file(run: _Run) -> HarvestReport:
    source, store = run.source, run.store
    since = _fresh_start(store, source.id)
    run.run_id = store.start_run(source.id, "file", True, None)
    if source.path is None:
        raise DumpError("a file source needs a path")
    records: list[RawRecord] = []
    bad: list[QuarantinedItem] = []
    seen: dict[str, int] = {}
    broken = False

    def flush() -> None:
        counts = store.apply(records, run.run_id, bad=bad)
        run.committed(counts, len(records))
        records.clear(), bad.clear()

    for n, item in enumerate(read_path(source.path, source.id, source.format, source.encoding,
                                       source.options.get("pattern")), 1):
        if isinstance(item, QuarantinedItem):
            broken = broken or isinstance(item, StreamBroken)
            bad.append(item)
        elif item.local_id in seen:
            bad.append(QuarantinedItem(source.id, item.local_id,
                                       f"duplicate local id {item.local_id!r}: record {n} of the dump has the "
                                       f"same 001 as record {seen[item.local_id]}; the first is kept",
                                       item.payload))
        else:
            seen[item.local_id] = n
            records.append(item)
        if len(records) + len(bad) >= FILE_BATCH:
            flush()
    flush()
    if broken:
        log.warning("%s: the dump is incomplete (see quarantine); records it lacks are not marked deleted",
                    source.id)
    else:
        end_full_harvest(run, since)
    return run.finish("ok")
