"""Jobs on rq + Redis: harvests, build slices, a scheduler, and the runner the staff dashboard calls.

With ``UNIONCAT_REDIS`` set, work goes to two rq queues that any number of
``unioncat worker`` processes (on any machine sharing the database) take from:

* ``unioncat-harvest`` — one job per source.  A Redis lock per source
  (``unioncat:lock:harvest:<id>``, expiring after the job timeout) means a
  source is never harvested twice at once; a second job for a source being
  harvested finishes at once as "skipped".  A finished harvest asks for a build.
* ``unioncat-build`` — the build as a chain of bounded jobs: normalise
  slices of ``build_slice`` raw records (each queues the next), then dedupe,
  then index.  One build lock keeps two chains apart; a build asked for while
  one runs is remembered and started when it ends, so requests coalesce.
* ``unioncat-dedupe`` — with ``UNIONCAT_DEDUPE_PARTITIONS`` > 1, the partitions of
  the dedupe link's staging (a full pass), scoring and merging
  (``unioncat.dedupe_jobs``); workers
  take these first.

Every stage keeps its checkpoint in the database, so a job killed half-way
(worker SIGKILLed, machine gone) is simply run again: rq's ``Retry`` with
intervals for failures, :meth:`RqRunner.recover_abandoned` for jobs whose
worker stopped heart-beating (the scheduler calls it every tick).  A lock
held by a job that is no longer running (or by an earlier attempt of the same
job) is taken over rather than waited out.

Workers read their settings from their own environment/flags (never from the
job payload, which would put database passwords into Redis).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from redis import Redis
from rq import Queue, Retry, Worker, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from storage.db import get_value
from web.actions import JobRunner
from web.ledger_figures import refresh as refresh_ledger, stale as ledger_stale

from . import dedupe_jobs, pipeline
from .alerts import harvest_and_alert
from .catalogue import NORMALISE_CHECKPOINT, Catalogue
from .dedupe_jobs import DEDUPE_QUEUE, RqFanout
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

HARVEST_QUEUE = "unioncat-harvest"
BUILD_QUEUE = "unioncat-build"
LOCK_PREFIX = "unioncat:lock:"
BUILD_AGAIN = "unioncat:build:again"
BUILD_AGAIN_REINDEX = "unioncat:build:again:reindex"
QUEUED_PREFIX = "unioncat:queued:harvest:"
LEDGER_QUEUED = "unioncat:queued:ledger"


@dataclass(frozen=True)
class JobPolicy:
    """Timeouts, retries and slice size (defaults for a consortium; tests shrink them)."""

    harvest_timeout: int = 6 * 3600
    build_timeout: int = 3600
    retry_intervals: tuple[int, ...] = (60, 300, 1800)
    build_slice: int = 100_000
    heartbeat: int = 30  # rq's job_monitoring_interval: a dead worker is noticed after a few of these

    @property
    def retry(self) -> Retry:
        return Retry(max=len(self.retry_intervals), interval=list(self.retry_intervals))


# -- locks -----------------------------------------------------------------------------

_TAKE_OVER = """
local held = redis.call('get', KEYS[1])
if held == false or held == ARGV[1] or held == ARGV[3] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def acquire(conn: Redis, name: str, owner: str, seconds: int) -> bool:
    """Take lock ``name`` for job ``owner``; a lock whose holder job is no longer alive is taken over.

    Alive means started, queued or waiting for a retry: a killed job that
    rq requeues keeps its id, so its next attempt finds the lock its own.
    """
    key = LOCK_PREFIX + name
    held = conn.get(key)
    stale = ""
    if held is not None and held.decode() != owner and not _alive(conn, held.decode()):
        stale = held.decode()
    return bool(conn.eval(_TAKE_OVER, 1, key, owner, seconds * 1000, stale))


def hand_over(conn: Redis, name: str, owner: str, successor: str, seconds: int) -> None:
    """Pass a held lock to the next job of a chain, so no other chain slips in between links."""
    conn.eval("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return 0",
              1, LOCK_PREFIX + name, owner, successor, seconds * 1000)


def release(conn: Redis, name: str, owner: str) -> None:
    conn.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
              1, LOCK_PREFIX + name, owner)


def holder(conn: Redis, name: str) -> str | None:
    value = conn.get(LOCK_PREFIX + name)
    return None if value is None else value.decode()


def _alive(conn: Redis, job_id: str) -> bool:
    try:
        status = Job.fetch(job_id, connection=conn).get_status(refresh=True)
    except NoSuchJobError:
        return False
    return status in (JobStatus.STARTED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


# -- the jobs (run inside ``unioncat worker``) ---------------------------------------------

_worker_settings: Settings | None = None
_worker_policy = JobPolicy()


def configure_worker(settings: Settings, policy: JobPolicy) -> None:
    """Called by ``unioncat worker`` before it starts; forked job processes inherit it."""
    global _worker_settings, _worker_policy
    _worker_settings, _worker_policy = settings, policy
    dedupe_jobs.configure(settings)


def _open() -> Catalogue:
    return Catalogue(_worker_settings or load_settings())


def _job_runner() -> "RqRunner":
    job = get_current_job()
    return RqRunner(job.connection, _worker_policy)


def harvest_job(source_id: str, full: bool = False, requested_by: str = "") -> dict:
    """Harvest one source under its lock, then ask for a build."""
    job = get_current_job()
    conn = job.connection
    conn.delete(QUEUED_PREFIX + source_id)
    if not acquire(conn, f"harvest:{source_id}", job.id, _worker_policy.harvest_timeout + 60):
        other = holder(conn, f"harvest:{source_id}")
        log.info("harvest of %s skipped: job %s is harvesting it", source_id, other)
        return {"source": source_id, "status": "skipped", "reason": f"job {other} is harvesting {source_id}"}
    try:
        cat = _open()
        try:
            (source,) = pipeline.select_sources(cat, [source_id])
            outcome = harvest_and_alert(cat, [source], full=full, progress=log.info)
        finally:
            cat.close()
    finally:
        release(conn, f"harvest:{source_id}", job.id)
    (report,) = outcome.reports
    if report.status != "ok":
        # a failed harvest is a failed job: rq retries it after the policy's intervals
        raise RuntimeError(f"harvest of {source_id} failed: {report.error}")
    _job_runner().build(requested_by=requested_by or f"harvest {source_id}")
    result = {"source": source_id, "status": report.status, **report.counts.as_dict()}
    if outcome.alert_problem:
        result["alert_problem"] = outcome.alert_problem
    return result


def build_job(stage: str, reindex: bool = False, requested_by: str = "") -> dict:
    """One link of the build chain: ``normalise`` (a slice), ``dedupe`` or ``index``; queues the next link.

    The build lock passes from link to link; a build job that finds another
    chain running leaves a note (``BUILD_AGAIN``) and ends, and the running
    chain starts one more build when it finishes.
    """
    job = get_current_job()
    conn = job.connection
    runner = _job_runner()
    seconds = _worker_policy.build_timeout + 60
    if not acquire(conn, "build", job.id, seconds):
        if reindex:
            conn.set(BUILD_AGAIN_REINDEX, "1")
        conn.set(BUILD_AGAIN, requested_by or "coalesced build")
        if not acquire(conn, "build", job.id, seconds):  # the other chain may have ended meanwhile
            return {"stage": stage, "status": "coalesced", "reason": f"build job {holder(conn, 'build')} runs"}
    if stage == "normalise" and (reindex or not conn.exists(BUILD_AGAIN_REINDEX)):
        # this link reads every change made until now: requests made before it are served by this chain
        # (a reindex request only by a reindexing chain); one made while a later link runs is not, and
        # stays for the index link to pick up
        conn.delete(BUILD_AGAIN, BUILD_AGAIN_REINDEX)

    def then(next_stage: str) -> None:
        hand_over(conn, "build", job.id, runner.enqueue_build_stage(next_stage, reindex, requested_by), seconds)

    cat = _open()
    try:
        if stage == "normalise":
            report = pipeline.normalise_stage(cat, progress=log.info, limit=_worker_policy.build_slice)
            with cat.engine.connect() as c:
                left = cat.raw.count_changed_since(get_value(c, NORMALISE_CHECKPOINT))
            then("normalise" if left else "dedupe")
            return {"stage": stage, "normalised": report.normalised, "quarantined": report.quarantined,
                    "deleted": report.deleted, "left": left}
        if stage == "dedupe":
            fanout = RqFanout(conn, cat, _worker_policy.build_timeout, _worker_policy.retry,
                              runner.recover_abandoned)
            d = pipeline.dedupe_stage(cat, progress=log.info, fanout=fanout)
            then("index")
            return {"stage": stage, "records_changed": d.records_changed, "clusters_written": d.clusters_written}
        if stage == "index":
            i = pipeline.index_stage(cat, progress=log.info, reindex=reindex)
            pipeline.record_quality(cat, progress=log.info)
            release(conn, "build", job.id)
            again = conn.getdel(BUILD_AGAIN)
            again_reindex = bool(conn.getdel(BUILD_AGAIN_REINDEX))
            if again:
                runner.build(reindex=again_reindex, requested_by=again.decode())
            return {"stage": stage, "indexed": i.indexed, "deleted": i.deleted, "total": i.total}
        raise ValueError(f"unknown build stage {stage!r}")
    finally:
        cat.close()


def ledger_job(requested_by: str = "") -> dict:
    """Compute the contribution ledger and keep it as the current snapshot the staff pages read."""
    job = get_current_job()
    try:
        cat = _open()
        try:
            month, rows = refresh_ledger(cat)
        finally:
            cat.close()
    finally:
        job.connection.delete(LEDGER_QUEUED)
    log.info("ledger snapshot of %s: %d members (for %s)", month, len(rows), requested_by or "?")
    return {"month": month, "members": len(rows)}


# -- the runner (enqueues; used by the CLI, the scheduler and the staff dashboard) -------------

@dataclass
class RqRunner(JobRunner):
    """Enqueue harvests and builds on Redis and report on them (the :class:`web.actions.JobRunner` of rq)."""

    connection: Redis
    policy: JobPolicy = field(default_factory=JobPolicy)

    @classmethod
    def from_url(cls, url: str, policy: JobPolicy | None = None) -> "RqRunner":
        return cls(Redis.from_url(url), policy or JobPolicy())

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.connection)

    def harvest(self, source_id: str, *, full: bool = False, requested_by: str = "") -> str:
        """Queue a harvest of one source; one already queued for it is returned instead of a second."""
        queued = self.connection.get(QUEUED_PREFIX + source_id)
        if queued is not None and self._status(queued.decode()) in (JobStatus.QUEUED, JobStatus.SCHEDULED):
            return queued.decode()
        job = self.queue(HARVEST_QUEUE).enqueue(
            harvest_job, source_id, full=full, requested_by=requested_by,
            job_timeout=self.policy.harvest_timeout, retry=self.policy.retry, result_ttl=7 * 86400,
            failure_ttl=30 * 86400, description=f"harvest {source_id}{' (full)' if full else ''}"
            + (f" for {requested_by}" if requested_by else ""),
            meta={"requested_by": requested_by, "source": source_id})
        self.connection.set(QUEUED_PREFIX + source_id, job.id, ex=self.policy.harvest_timeout)
        return job.id

    def build(self, *, reindex: bool = False, requested_by: str = "") -> str:
        """Queue a build chain (normalise slices → dedupe → index); returns the first job's id."""
        return self.enqueue_build_stage("normalise", reindex, requested_by)

    def ledger(self, *, requested_by: str = "") -> str:
        """Queue the ledger refresh (on the build queue); one queued or running is returned instead."""
        queued = self.connection.get(LEDGER_QUEUED)
        if queued is not None and self._status(queued.decode()) in (JobStatus.QUEUED, JobStatus.SCHEDULED,
                                                                    JobStatus.STARTED):
            return queued.decode()
        job = self.queue(BUILD_QUEUE).enqueue(
            ledger_job, requested_by=requested_by, job_timeout=self.policy.build_timeout, result_ttl=7 * 86400,
            failure_ttl=30 * 86400, description="ledger refresh" + (f" for {requested_by}" if requested_by else ""),
            meta={"requested_by": requested_by})
        self.connection.set(LEDGER_QUEUED, job.id, ex=self.policy.build_timeout)
        return job.id

    def enqueue_build_stage(self, stage: str, reindex: bool, requested_by: str) -> str:
        """Queue one link of a build chain (``normalise``, ``dedupe`` or ``index``)."""
        job = self.queue(BUILD_QUEUE).enqueue(
            build_job, stage, reindex=reindex, requested_by=requested_by,
            job_timeout=self.policy.build_timeout, retry=self.policy.retry, result_ttl=7 * 86400,
            failure_ttl=30 * 86400, description=f"build: {stage}" + (" (reindex)" if reindex else "")
            + (f" for {requested_by}" if requested_by else ""), meta={"requested_by": requested_by})
        return job.id

    def _status(self, job_id: str) -> str | None:
        try:
            return Job.fetch(job_id, connection=self.connection).get_status(refresh=True)
        except NoSuchJobError:
            return None

    def status(self) -> dict:
        """``{"queued", "started", "scheduled", "failed": [{"id", "description", "error", "ended_at"}], "workers"}``."""
        queued = started = scheduled = 0
        failed = []
        for name in (HARVEST_QUEUE, BUILD_QUEUE, DEDUPE_QUEUE):
            q = self.queue(name)
            queued += q.count
            started += StartedJobRegistry(queue=q).count
            scheduled += ScheduledJobRegistry(queue=q).count
            registry = FailedJobRegistry(queue=q)
            for job in Job.fetch_many(registry.get_job_ids(), connection=self.connection):
                if job is None:
                    continue
                result = job.latest_result()
                error = ((result.exc_string if result is not None else "") or "").strip().splitlines()
                ended = job.ended_at
                failed.append({"id": job.id, "description": job.description, "error": error[-1] if error else "",
                               "ended_at": ended.replace(tzinfo=timezone.utc).isoformat() if ended else None})
        failed.sort(key=lambda f: f["ended_at"] or "", reverse=True)
        return {"queued": queued, "started": started, "scheduled": scheduled, "failed": failed,
                "workers": len(Worker.all(connection=self.connection))}

    def idle(self) -> bool:
        s = self.status()
        return s["queued"] == 0 and s["started"] == 0 and s["scheduled"] == 0

    def recover_abandoned(self, grace: float | None = None) -> list[str]:
        """Requeue at once (or fail, when out of retries) started jobs whose worker stopped heart-beating.

        rq notices these itself only when the registry entry expires (job
        heartbeat interval + 60 s) and a live worker runs its maintenance
        (every 10 minutes); this does it as soon as the worker is seen dead.
        """
        grace = grace if grace is not None else 3 * self.policy.heartbeat + 10
        now = datetime.now(timezone.utc)
        alive = set()
        for worker in Worker.all(connection=self.connection):
            beat = worker.last_heartbeat
            if beat is not None and (now - beat.replace(tzinfo=timezone.utc)).total_seconds() <= grace:
                alive.add(worker.name)
        recovered = []
        for name in (HARVEST_QUEUE, BUILD_QUEUE, DEDUPE_QUEUE):
            q = self.queue(name)
            registry = StartedJobRegistry(queue=q)
            for job_id in registry.get_job_ids(cleanup=False):
                try:
                    job = Job.fetch(job_id, connection=self.connection)
                except NoSuchJobError:
                    continue
                if not job.worker_name or job.worker_name in alive:
                    continue  # no worker recorded yet: it is being started right now
                log.warning("job %s (%s) was abandoned by worker %s; %s", job.id, job.description,
                            job.worker_name, "retrying" if job.retries_left else "failing it")
                entries = [k for k in self.connection.zrange(registry.key, 0, -1)
                           if k.decode().split(":", 1)[0] == job.id]
                # ZREM is atomic: of two recoverers (the scheduler, a starting worker) only one requeues
                if not entries or not self.connection.zrem(registry.key, *entries):
                    continue
                with self.connection.pipeline() as pipe:
                    if job.retries_left:
                        # straight back to the front of the queue: the job did not fail, its worker died
                        job.retries_left -= 1
                        q._enqueue_job(job, pipeline=pipe, at_front=True)
                    else:
                        job.set_status(JobStatus.FAILED, pipeline=pipe)
                        job._handle_failure("abandoned: its worker died", pipe, worker_name="")
                    pipe.execute()
                recovered.append(job.id)
        return recovered


def schedule_tick(runner: RqRunner, cat: Catalogue, now: datetime | None = None) -> list[str]:
    """Queue a harvest for every source that is due and not already queued or running, and the ledger
    refresh when its snapshot is older than :data:`web.ledger_figures.REFRESH_EVERY`; returns job ids."""
    runner.recover_abandoned()
    ids = []
    for source in pipeline.due_sources(cat, now):
        if holder(runner.connection, f"harvest:{source.id}") is not None:
            continue
        ids.append(runner.harvest(source.id, requested_by="scheduler"))
    if ledger_stale(cat.engine, now):
        ids.append(runner.ledger(requested_by="scheduler"))
    return ids


def run_scheduler(runner: RqRunner, settings: Settings, interval: float, once: bool = False,
                  progress=log.info) -> None:
    """``unioncat scheduler``: every ``interval`` seconds, queue the due harvests (the sources' ``schedule``)."""
    while True:
        cat = Catalogue(settings)
        try:
            ids = schedule_tick(runner, cat)
        finally:
            cat.close()
        if ids:
            progress(f"queued {len(ids)} job(s): {', '.join(ids)}")
        if once:
            return
        time.sleep(interval)


def run_worker(runner: RqRunner, settings: Settings, burst: bool = False, name: str | None = None,
               queues: tuple[str, ...] = (DEDUPE_QUEUE, HARVEST_QUEUE, BUILD_QUEUE)) -> bool:
    """``unioncat worker``: take jobs from the queues (with rq's scheduler for retries) until stopped; a
    dedupe partition first, as the build it belongs to waits for it."""
    configure_worker(settings, runner.policy)
    runner.recover_abandoned()  # a worker restarted after a crash finds its last job requeued
    worker = Worker([runner.queue(q) for q in queues], connection=runner.connection, name=name,
                    job_monitoring_interval=runner.policy.heartbeat)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
