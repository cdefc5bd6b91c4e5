"""A dedupe pass's partitions as rq jobs: any worker takes them, the dedupe link of the build waits for them.

With ``UNIONCAT_DEDUPE_PARTITIONS`` > 1 the build chain's dedupe job (the *orchestrator*) plans the block
walk and clusters — the serial steps — but queues a full pass's staging, and every pass's scoring and
merging, as that many jobs on ``unioncat-dedupe`` (see ``dedupe.partition``), which every ``unioncat worker``
serves before harvests and builds.  The orchestrator does not sit idle on its worker while they run, and
cannot deadlock a consortium that has one worker: it takes partitions still queued off the queue (an
atomic ``LREM``, so a partition runs once) and runs them itself, until every partition is done.

Restart-safe: a partition whose worker dies is requeued by ``RqRunner.recover_abandoned`` (called while
waiting) and run again, which ends where one run ends (its writes skip what is stored); a partition
out of retries fails the orchestrator, which rq retries — the pass, checkpoint unmoved, runs again.
Progress: each partition job logs its own and keeps the last line in its job's ``meta["progress"]``;
the orchestrator logs partitions done as they finish and keeps that count in its own job's meta.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from .catalogue import Catalogue
from .dedupe_parts import dedupe_part
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

DEDUPE_QUEUE = "unioncat-dedupe"
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Called through ``jobs.configure_worker``: the settings a partition job opens its catalogue with."""
    global _settings
    _settings = settings


def dedupe_part_job(task: str, args: dict) -> dict:
    """One partition of a dedupe pass (``score`` or ``merge``, see ``dedupe.partition``)."""
    job = get_current_job()

    def progress(message: str) -> None:
        log.info("dedupe %s %d/%d: %s", task, args["part"] + 1, args["parts"], message)
        if job is not None:
            job.meta["progress"] = message
            job.save_meta()

    cat = Catalogue(_settings or load_settings())
    try:
        return dedupe_part(cat, task, args, progress)
    finally:
        cat.close()


@dataclass
class RqFanout:
    """A ``dedupe.partition.Fanout`` over rq: queue a job a partition, help run them, wait for all."""

    connection: Redis
    cat: Catalogue                       # the orchestrator's: partitions it runs itself use it
    timeout: int
    retry: Retry
    recover: Callable[[], list[str]]     # requeue the jobs of dead workers (``RqRunner.recover_abandoned``)
    progress: Callable[[str], None] = log.info
    poll: float = 0.2
    _done: dict[str, dict] = field(default_factory=dict)

    def __call__(self, task: str, tasks: list[dict]) -> list[dict]:
        queue = Queue(DEDUPE_QUEUE, connection=self.connection)
        jobs = [queue.enqueue(dedupe_part_job, task, args, job_timeout=self.timeout, retry=self.retry,
                              result_ttl=86400, failure_ttl=30 * 86400,
                              description=f"dedupe {task} {args['part'] + 1}/{args['parts']}")
                for args in tasks]
        self._done = {}
        while len(self._done) < len(jobs):
            ran = self._run_one_here(queue, jobs, task, tasks)
            self._collect(jobs, task)
            if not ran and len(self._done) < len(jobs):
                self.recover()
                time.sleep(self.poll)
        return [self._done[j.id] for j in jobs]

    def _run_one_here(self, queue: Queue, jobs: list[Job], task: str, tasks: list[dict]) -> bool:
        """Take one of our partitions still queued off the queue and run it here; False if none was."""
        for job, args in zip(jobs, tasks):
            if job.id not in self._done and queue.remove(job.id):
                self._done[job.id] = dedupe_part(self.cat, task, args, self.progress)
                job.delete()
                self._report(task, len(jobs), "here")
                return True
        return False

    def _collect(self, jobs: list[Job], task: str) -> None:
        """Take the results of partitions other workers finished; a partition out of retries fails the pass."""
        for job in jobs:
            if job.id in self._done:
                continue
            try:
                status = job.get_status(refresh=True)
            except NoSuchJobError:
                raise RuntimeError(f"dedupe {task} partition job {job.id} vanished from Redis") from None
            if status == JobStatus.FINISHED:
                self._done[job.id] = job.return_value(refresh=True)
                self._report(task, len(jobs), job.worker_name or "a worker")
            elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                raise RuntimeError(f"dedupe {task} partition job {job.id} {status}: the pass runs again")

    def _report(self, task: str, total: int, where: str) -> None:
        """Log partitions done, and keep the count in the dedupe job's meta (``rq info``, the job's hash)."""
        message = f"dedupe {task}: {len(self._done)}/{total} partitions done (the last by {where})"
        self.progress(message)
        job = get_current_job()
        if job is not None:
            job.meta["progress"] = message
            job.save_meta()
