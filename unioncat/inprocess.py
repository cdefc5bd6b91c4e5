"""Jobs without Redis: the staff pages' harvests and builds run in a background thread.

One worker thread takes the jobs in order (harvests and builds of one embedded database must not
run side by side anyway; SQLite has one writer).  Jobs are remembered in memory — the newest
``KEEP`` — so the dashboard shows what is queued, running and failed; the harvest runs themselves
are in the database like any other.  Implements :class:`web.actions.JobRunner`; ``unioncat.jobs``
is the rq one, for several processes and machines.  A harvest job runs :func:`unioncat.alerts.harvest_and_alert`
like every other harvest: a mail server that is down shows as the job's ``warning``, not as a failed job.
"""
from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from web.actions import JobRunner
from web.ledger_figures import refresh as refresh_ledger, stale as ledger_stale

from . import pipeline
from .alerts import harvest_and_alert
from .catalogue import Catalogue

log = logging.getLogger(__name__)
KEEP = 200


@dataclass
class Job:
    id: str
    description: str
    requested_by: str
    state: str = "queued"  # queued | started | finished | failed
    error: str | None = None
    warning: str | None = None  # a problem beside the work, e.g. alerts that could not be mailed
    ended_at: datetime | None = None
    result: object = None


class InProcessRunner(JobRunner):
    """A :class:`web.actions.JobRunner` over one :class:`unioncat.catalogue.Catalogue`."""

    def __init__(self, cat: Catalogue):
        self.cat = cat
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unioncat-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def harvest(self, source_id: str, *, full: bool = False, requested_by: str = "") -> str:
        source = self.cat.sources.source(source_id)  # KeyError for an unknown member, at once

        def work(job: Job) -> list[str]:
            outcome = harvest_and_alert(self.cat, [source], full=full, progress=log.info)
            job.warning = outcome.alert_problem
            failed = [r for r in outcome.reports if r.status == "failed"]
            if failed:
                raise RuntimeError(failed[0].error)
            return [r.status for r in outcome.reports]
        return self._submit(f"{'full ' if full else ''}harvest {source_id}", requested_by, work)

    def build(self, *, reindex: bool = False, requested_by: str = "") -> str:
        def work(job: Job) -> object:
            result = pipeline.build(self.cat, progress=log.info, reindex=reindex)
            if ledger_stale(self.cat.engine):  # no scheduler here: a build is when the ledger may be due
                refresh_ledger(self.cat)
            return result
        return self._submit("rebuild index" if reindex else "build", requested_by, work)

    def ledger(self, *, requested_by: str = "") -> str:
        """Compute the contribution ledger's snapshot in the job thread (after any harvest or build queued)."""
        return self._submit("ledger refresh", requested_by, lambda job: refresh_ledger(self.cat)[0])

    def status(self) -> dict:
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            "queued": sum(j.state == "queued" for j in jobs),
            "started": sum(j.state == "started" for j in jobs),
            "failed": [{"id": j.id, "description": j.description, "error": j.error,
                        "ended_at": j.ended_at.isoformat() if j.ended_at else None}
                       for j in reversed(jobs) if j.state == "failed"],
            "workers": 1,
        }

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every job submitted so far has ended (tests, and a clean shutdown)."""
        self._pool.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _submit(self, description: str, requested_by: str, work: Callable[[Job], object]) -> str:
        job = Job(id=f"local-{next(self._ids)}", description=description, requested_by=requested_by)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, work)
        log.info("job %s queued by %s: %s", job.id, requested_by or "?", description)
        return job.id

    def _run(self, job: Job, work: Callable[[Job], object]) -> None:
        job.state = "started"
        try:
            job.result = work(job)
            job.state = "finished"
        except Exception as exc:  # noqa: BLE001 - a failed job is shown on the dashboard, not raised
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            log.error("job %s (%s) failed: %s\n%s", job.id, job.description, job.error, traceback.format_exc())
        finally:
            job.ended_at = datetime.now(timezone.utc)
