"""Commands of the scaled-out mode: ``unioncat db …``, ``unioncat worker``, ``unioncat scheduler``.

Registered on the main group by ``unioncat.cli``.  ``queue_instead``
is what ``harvest``/``build``/``run`` call first: with ``UNIONCAT_REDIS`` set
they queue jobs for the workers and print the job ids instead of working
in-process (``--in-process`` forces the old way).
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
from redis.exceptions import RedisError

from storage.db import make_engine, sqlite_url

from .. import pipeline, schema
from ..jobs import JobPolicy, RqRunner, run_scheduler, run_worker
from .context import ConfigProblem, Context, chosen_sources, say


def redacted(url: str) -> str:
    """``redis://:secret@host:6379/0`` → ``redis://host:6379/0`` for messages."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


def runner_for(obj: Context) -> RqRunner:
    """The rq runner of the configured Redis (a usage error when none is configured)."""
    settings = obj.settings
    if not settings.redis_url:
        raise ConfigProblem("UNIONCAT_REDIS is not set: jobs run in-process (set it to a redis:// URL)")
    return RqRunner.from_url(settings.redis_url)


def queue_instead(obj: Context, what: str, ids: Iterable[str] = (), full: bool = False, reindex: bool = False,
                  in_process: bool = False) -> bool:
    """With Redis configured, queue ``what`` (harvest | build | run) and print the job ids; True if queued."""
    if in_process or not obj.settings.redis_url:
        return False
    runner = runner_for(obj)
    cat = obj.catalogue()
    if what == "run":
        sources = pipeline.due_sources(cat)
    else:
        sources = chosen_sources(cat, ids) if what == "harvest" else []
    for source in sources:
        click.echo(f"{runner.harvest(source.id, full=full, requested_by='cli')}\tharvest {source.id}")
    if what == "build" or (what == "run" and not sources):
        click.echo(f"{runner.build(reindex=reindex, requested_by='cli')}\tbuild")
    say(f"queued on {redacted(obj.settings.redis_url)}; `unioncat status` shows progress "
        "(each finished harvest queues a build)")
    return True


@click.group()
def db() -> None:
    """Database schema (Alembic migrations; SQLite or PostgreSQL)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(obj: Context, revision: str) -> None:
    """Create or upgrade the database schema (every command also does this when it starts)."""
    engine = make_engine(obj.settings.database_url)
    try:
        before, after = schema.upgrade(engine, revision)
    finally:
        engine.dispose()
    say(f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (unchanged)"))


@db.command("current")
@click.pass_obj
def db_current(obj: Context) -> None:
    """Print the database's revision, the newest one, and any difference from the code's tables."""
    engine = make_engine(obj.settings.database_url)
    try:
        with engine.connect() as conn:
            current = schema.current(conn)
        diffs = schema.differences(engine) if current else []
    finally:
        engine.dispose()
    click.echo(f"current {current or 'none'}, head {schema.head()}")
    for diff in diffs:
        click.echo(f"  differs: {diff}")


@db.command("revision")
@click.option("-m", "--message", required=True, help="What changed, e.g. 'staff users table'.")
def db_revision(message: str) -> None:
    """Write a new migration for the tables added to the code since the last one (developers)."""
    with tempfile.TemporaryDirectory(prefix="unioncat-revision-") as tmp:
        engine = make_engine(sqlite_url(Path(tmp) / "scratch.db"))
        try:
            path = schema.revision(engine, message)
        finally:
            engine.dispose()
    click.echo(path or "no changes")


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty (for batch runs and tests).")
@click.option("--name", default=None, help="Worker name (default: host and pid).")
@click.option("--heartbeat", default=30, show_default=True, type=click.IntRange(1),
              help="Seconds between heartbeats; a worker silent for 3 of them is taken for dead.")
@click.option("--retry", "retry", default="60,300,1800", show_default=True, metavar="SECONDS,…",
              help="Waits before each retry of a failed job this worker queues (a build's next link).")
@click.option("--build-slice", default=100_000, show_default=True, type=click.IntRange(1),
              help="Raw records one normalise job takes before it queues the next.")
@click.pass_obj
def worker(obj: Context, burst: bool, name: str | None, heartbeat: int, retry: str, build_slice: int) -> None:
    """Run jobs from the Redis queues (harvests and builds) until stopped."""
    try:
        intervals = tuple(int(x) for x in retry.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{retry!r}: expected seconds separated by commas", param_hint="--retry") from None
    runner = runner_for(obj)
    runner.policy = JobPolicy(heartbeat=heartbeat, retry_intervals=intervals, build_slice=build_slice)
    settings = obj.settings
    cat = obj.catalogue()  # fail fast on a bad sources file or database, and upgrade the schema once
    say(f"worker on {redacted(settings.redis_url)}, database {cat.engine.url!r}")
    run_worker(runner, settings, burst=burst, name=name)


@click.command()
@click.option("--interval", default=60.0, show_default=True, help="Seconds between looks at the schedules.")
@click.option("--once", is_flag=True, help="Queue what is due now and exit (e.g. from cron).")
@click.pass_obj
def scheduler(obj: Context, interval: float, once: bool) -> None:
    """Queue a harvest of every source whose `schedule` says it is due; requeue jobs of dead workers."""
    run_scheduler(runner_for(obj), obj.settings, interval, once=once, progress=say)


def jobs_status(obj: Context) -> dict | None:
    """The job queues for ``unioncat status`` (None in the in-process mode)."""
    if not obj.settings.redis_url:
        return None
    try:
        return runner_for(obj).status()
    except RedisError as exc:
        return {"error": f"Redis at {redacted(obj.settings.redis_url)} unreachable: {exc}"}


def print_jobs(jobs: dict) -> None:
    """The job queues as ``unioncat status`` prints them."""
    if "error" in jobs:
        click.echo(f"jobs: {jobs['error']}")
        return
    click.echo(f"jobs: {jobs['queued']} queued, {jobs['started']} running, {jobs['scheduled']} waiting to retry, "
               f"{len(jobs['failed'])} failed, {jobs['workers']} worker(s)")
    for f in jobs["failed"][:20]:
        click.echo(f"  FAILED {f['id']} {f['description']} at {f['ended_at']}: {f['error']}")
