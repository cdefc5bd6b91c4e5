"""One harvest run of one member, the same for every protocol: ``Run``.

A protocol strategy (:mod:`harvester.protocols`) only fetches; the run keeps the books:

* :meth:`Run.begin` opens the run row (a run left ``running`` by a dead process is marked
  interrupted) and fixes the run's start — for a *full* harvest strictly after every ``seen_at`` of
  the member (:func:`fresh_start`), since whatever is not seen again is deleted at the end;
* :meth:`Run.commit` stores a page with the checkpoint that resumes after it, in one transaction,
  and reports progress;
* :meth:`Run.end` applies the run's deletions — or holds them all when they are too many
  (:mod:`harvester.safety`) — saves the new high water and closes the run row.

A *full* harvest (``--full``, a first harvest, or a file dump, which is a snapshot) ends by marking
deleted whatever the member did not send, since many ILSs (Alma) forget deletions after a while.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from consortium.config import Source
from storage.db import utcnow
from . import safety
from .raw import QuarantinedItem, RawRecord
from .store import RawStore
from .stores.checkpoints import Checkpoint
from .stores.records import Counts

log = logging.getLogger(__name__)


@dataclass
class HarvestProgress:
    """Reported after each committed page (OAI), batch (files) or present request (Z39.50).

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
    #: 'ok' | 'held' (records taken, deletions held for approval) | 'failed' |
    #: 'skipped' (another harvest of the member is running; nothing done)
    status: str
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


class Strategy(Protocol):
    """One protocol's way of fetching a member (``harvester.protocols``): every protocol has this shape."""

    def harvest(self, run: "Run") -> str | None:
        """Fetch the member's records through ``run`` (``begin``, then ``commit`` per page); return the high water."""


def fresh_start(store: RawStore, source_id: str) -> datetime:
    """A start time strictly after every ``seen_at`` of this source.

    ``seen_at`` has one-second resolution: a full run starting in the same
    second as the previous run ended would otherwise not recognise the
    previous run's records as "not seen since", and miss deletions.
    """
    last = store.last_seen(source_id)
    now = utcnow()
    while last is not None and now <= last:
        time.sleep(0.05)
        now = utcnow()
    return now


class Run:
    """Bookkeeping shared by every protocol: the run row, counts, checkpoints, deletions, the report.

    ``full`` is what was asked for; ``checkpoint`` is the member's position when the run started.
    A strategy that finds its data incomplete (a dump cut short) sets ``complete = False``: then
    nothing unseen is deleted.
    """

    def __init__(self, source: Source, store: RawStore, full: bool = False, progress: ProgressFn | None = None):
        self.source, self.store, self.progress = source, store, progress
        self.full_requested = full
        self.checkpoint = store.checkpoint(source.id)
        self.full = False
        self.since: datetime | None = None
        self.complete = True
        self.counts = Counts()
        self.pages = 0
        self.records = 0
        self.run_id: int | None = None
        self.held: str | None = None  # why the run's deletions were held for approval
        self.started = utcnow()
        self._clock = time.monotonic()
        self.lock_owner: str | None = None  # set by harvest_source while it holds the member's lock

    def _open(self, full: bool, from_datestamp: str | None, resumed: bool = False) -> None:
        self.store.interrupt_stale_runs(self.source.id)
        self.run_id = self.store.start_run(self.source.id, self.source.protocol, full, from_datestamp,
                                           resumed=resumed)

    def begin(self, full: bool, from_datestamp: str | None = None, since: datetime | None = None,
              resumed: bool = False) -> None:
        """Open the run row; ``since`` (a resumed run's own start) defaults to a fresh one."""
        self._open(full, from_datestamp, resumed)
        self.full = full
        self.since = since or (fresh_start(self.store, self.source.id) if full else utcnow())

    def position(self, **resume: object) -> Checkpoint:
        """A checkpoint that resumes this run (``resume``: the protocol's token, offsets or state)."""
        return Checkpoint(self.source.id, high_water=self.checkpoint.high_water, resume_full=self.full,
                          resume_started=self.since, **resume)  # type: ignore[arg-type]

    def commit(self, records: list[RawRecord], bad: Iterable[QuarantinedItem] = (),
               resume: dict | None = None, defer_deletions: bool = False) -> Counts:
        """Store one page (with the checkpoint after it, when ``resume`` is given) and report progress."""
        checkpoint = self.position(**resume) if resume is not None else None
        counts = self.store.apply(records, self.run_id, checkpoint=checkpoint, bad=bad,
                                  defer_deletions=defer_deletions)
        self.counts += counts
        if self.lock_owner is not None:
            self.store.refresh_lock(self.source.id, self.lock_owner)
        self.pages += 1
        self.records += len(records)
        if self.progress is not None:
            self.progress(HarvestProgress(self.source.id, self.pages, self.records, Counts(**self.counts.as_dict())))
        return counts

    def end(self, high_water: str | None) -> HarvestReport:
        """The member sent everything: settle deletions, save the high water, close the run."""
        if self.complete:
            deleted, self.held = safety.settle(self.store, self.source, self.run_id, self.since, self.full)
            self.counts.deleted += deleted
        self.store.save_checkpoint(Checkpoint(self.source.id, high_water=high_water))
        return self.finish("ok", high_water=high_water)

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
        """End the run as failed, naming the source and where it is (a run row is opened if none was)."""
        if self.run_id is None:
            self._open(self.full_requested, None)
        where = self.source.url or (str(self.source.path) if self.source.path else None)
        message = str(exc) or type(exc).__name__
        if where and where not in message:
            message = f"{where}: {message}"
        return self.finish("failed", f"source {self.source.id!r}: {message}")

    def skipped(self, why: str) -> HarvestReport:
        """Another harvest of the member holds its lock: report that, touching nothing (no run row)."""
        log.warning("%s: %s", self.source.id, why)
        return HarvestReport(source=self.source.id, run_id=None, status="skipped", error=why,
                             started=self.started, finished=utcnow(), duration=round(time.monotonic() - self._clock, 3))

    def interrupted(self, exc: BaseException) -> None:
        """Record a Ctrl-C / exit on the run row (best effort; the checkpoint is already safe)."""
        if self.run_id is None:
            return
        try:
            self.store.finish_run(self.run_id, "interrupted", self.counts,
                                  error=f"interrupted ({type(exc).__name__}); the next run resumes it")
        except Exception:  # noqa: BLE001 - never hide the interrupt behind a bookkeeping error
            log.exception("%s: could not mark the run interrupted", self.source.id)
