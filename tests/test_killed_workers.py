"""A worker process killed mid-stage (the OOM killer) stops the stage with a clear error — the normalise stage's
and the dedupe's scoring both hung for good before (``runtime/workerpool.py``) — and the stage run again goes
on and loses nothing; the process that owns the workers killed leaves none of them behind."""
from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.workerpool import WorkerDied
from storage.db import get_value
from test_jobs import proctree
from unioncat import dedupe_parts, pipeline
from unioncat.catalogue import NORMALISE_CHECKPOINT
from unioncat.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_dedupe_rq", REPO / "bench" / "dedupe_rq.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
_spec = importlib.util.spec_from_file_location("bench_dedupe_digest", REPO / "bench" / "dedupe_digest.py")
dedupe_digest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dedupe_digest)


def kill_a_worker(found: list[int], working: Callable[[], bool]) -> None:
    """SIGKILL a worker process of this process's pool once ``working()``: the pool in its steady state, its
    feeder thread writing the next batches while the workers parse.  A worker is a child of this process's
    forkserver — not any other descendant (a test session's PostgreSQL and Redis run under it too)."""
    deadline = time.monotonic() + 60
    while not working() and time.monotonic() < deadline:
        time.sleep(0.01)
    while not found and time.monotonic() < deadline:
        workers = workers_of(os.getpid())
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            found.append(workers[0])
            return
        time.sleep(0.01)


def killed_midway(stage: Callable[[], object], working: Callable[[], bool]) -> WorkerDied:
    """Run ``stage`` in a thread, SIGKILL one of its pool's workers once ``working()`` (:func:`kill_a_worker`),
    and return the :class:`WorkerDied` the stage ended with — within 120 s, where it used to hang."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(stage())
        except BaseException as exc:    # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    killed: list[int] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    kill_a_worker(killed, working)
    thread.join(timeout=120)
    assert killed, "no worker process was seen"
    assert not thread.is_alive(), "the stage hung after its worker was killed"
    assert isinstance(outcome[0], WorkerDied), outcome
    return outcome[0]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def checkpoint(cat: pipeline.Catalogue) -> int:
    with cat.engine.connect() as conn:
        return get_value(conn, NORMALISE_CHECKPOINT)


def test_a_killed_worker_stops_the_stage_and_a_rerun_loses_nothing(tmp_path):
    sources = bench.consortium(tmp_path, 20000, seed=21)
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=tmp_path / "var"))
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        raw = cat.raw.count_changed_since(0)
        assert raw >= 20000
        died = killed_midway(lambda: pipeline.normalise_stage(cat, workers=2),
                             lambda: checkpoint(cat) > 0)      # once the first batch is committed
        assert "run it again" in str(died)

        again = pipeline.normalise_stage(cat, workers=2)
        with cat.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM records").scalar()
        assert stored == raw                  # every harvested record normalised, once
        assert 0 < again.normalised < raw and again.quarantined == 0      # from the last committed batch on
    finally:
        cat.close()


def kill_a_scoring_worker(parent: subprocess.Popen, deadline: float) -> int | None:
    """SIGKILL a worker of ``parent``'s scoring pool (:func:`workers_of`) once it exists."""
    while parent.poll() is None and time.monotonic() < deadline:
        found = workers_of(parent.pid)
        if found:
            os.kill(found[0], signal.SIGKILL)
            return found[0]
        time.sleep(0.005)
    return None


def cli(sources: Path, data: Path, *args: str, workers: int = 1, **popen: object) -> subprocess.Popen:
    """``python -m unioncat --sources … --data … ARGS`` in a process of its own, in-process jobs (no Redis)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIONCAT_") or k == "UNIONCAT_CACHE"}
    env["UNIONCAT_DEDUPE_WORKERS"] = str(workers)
    return subprocess.Popen([sys.executable, "-m", "unioncat", "--sources", str(sources), "--data", str(data), *args],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_killed_scoring_worker_stops_the_build_and_a_rerun_decides_as_one_process(tmp_path):
    """`unioncat build` with the dedupe's scoring in worker processes (``UNIONCAT_DEDUPE_WORKERS=2``): a worker
    SIGKILLed mid-pass stops the build with one clear line and exit status 1 (``multiprocessing.Pool`` hung
    for good: the dead worker's batch was never answered), and the build run again goes on from the pass's
    place and ends where one uninterrupted process ends: every dedupe table the same."""
    sources = bench.consortium(tmp_path, 20000, seed=22)
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=tmp_path / "killed"))
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.normalise_stage(cat, workers=1)
    finally:
        cat.close()
    shutil.copytree(tmp_path / "killed", tmp_path / "alone")

    build = cli(sources, tmp_path / "killed", "build", workers=2)
    try:
        killed = kill_a_scoring_worker(build, time.monotonic() + 120)
        out, err = build.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        build.kill()
        raise AssertionError("the build hung after its scoring worker was killed") from None
    assert killed, f"no scoring worker was seen: {err[-2000:]}"
    assert build.returncode == 1, err[-2000:]
    assert "a worker process of the dedupe's scoring was killed by a signal (SIGKILL" in err and "run it again" in err
    assert "Traceback" not in err

    again = cli(sources, tmp_path / "killed", "build", workers=2)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    assert "it finished a full pass interrupted while scoring" in out + err, (out + err)[-2000:]
    alone = cli(sources, tmp_path / "alone", "build", workers=1)
    out, err = alone.communicate(timeout=300)
    assert alone.returncode == 0, err[-2000:]
    assert dedupe_digest.digests(f"sqlite:///{tmp_path / 'killed' / 'unioncat.db'}") == \
        dedupe_digest.digests(f"sqlite:///{tmp_path / 'alone' / 'unioncat.db'}")


def descendants(pid: int) -> list[int]:
    return proctree.tree([pid])[1:]       # parents first: the process itself, then all below it


def workers_of(pid: int) -> list[int]:
    """The pool workers under process ``pid``: its forkserver's children (the normaliser's, or the scoring's
    when the normaliser had nothing to do)."""
    children = proctree.table()[1]
    servers = [p for p in children.get(pid, []) if "multiprocessing.forkserver" in cmdline(p)]
    return [p for server in servers for p in children.get(server, [])]


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody reaped (an orphan under a PID 1 that does not reap)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def build_at_work(tmp_path: Path, phase: str, **popen: object) -> tuple[subprocess.Popen, Path, Path]:
    """``unioncat build`` of a harvested 20k consortium (normalised too for ``scoring``), in its own process,
    once its ``phase`` workers are at work: (the process, sources.yaml, data folder)."""
    sources = bench.consortium(tmp_path, 20000, seed=23)
    data = tmp_path / "var"
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=data))
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        if phase == "scoring":
            pipeline.normalise_stage(cat, workers=1)
    finally:
        cat.close()
    build = cli(sources, data, "build", workers=2, **popen)
    deadline = time.monotonic() + 120
    while not workers_of(build.pid) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert workers_of(build.pid), f"no {phase} worker was seen"
    time.sleep(0.3)                       # at work on their batches
    return build, sources, data


def all_gone(pids: list[int], within: float) -> list[tuple[int, str]]:
    """Those of ``pids`` still running after ``within`` seconds, with their command lines."""
    deadline = time.monotonic() + within
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [(p, cmdline(p)[:80]) for p in pids if not gone(p)]


@pytest.mark.parametrize("phase", ["normalise", "scoring"])
def test_a_killed_build_leaves_no_worker_behind(tmp_path, phase):
    """``kill -9`` of ``unioncat build`` while its workers work — the normaliser's or the dedupe's scoring
    ones: every process it started ends within seconds (they stayed for good, blocked
    on their pipes, a dedupe worker's SQLite read keeping the WAL from being checkpointed), the WAL can be
    checkpointed, and the build run again finishes."""
    build, sources, data = build_at_work(tmp_path, phase)
    below = descendants(build.pid)
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    left = all_gone(below, 15)
    assert not left, f"processes of the killed build still running: {left}"
    with sqlite3.connect(data / "unioncat.db") as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "something still holds the database open"
    again = cli(sources, data, "build", workers=2)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]


@pytest.mark.parametrize("phase", ["normalise", "scoring"])
def test_ctrl_c_stops_a_build_in_one_line(tmp_path, phase):
    """Ctrl-C (SIGINT to the process group) while the workers work: the build says "Aborted!" and ends within
    seconds, no worker prints a ``KeyboardInterrupt`` of its own (forked scoring workers did), and none is
    left."""
    build, _, _ = build_at_work(tmp_path, phase, start_new_session=True)
    below = descendants(build.pid)
    os.killpg(build.pid, signal.SIGINT)
    out, err = build.communicate(timeout=60)
    assert build.returncode == 1 and err.rstrip().endswith("Aborted!"), err[-2000:]
    assert "KeyboardInterrupt" not in err and "Traceback" not in err, err[-2000:]
    assert not all_gone(below, 15)


def test_a_killed_partition_worker_stops_the_pass_and_a_rerun_decides_as_one_process(tmp_path, monkeypatch):
    """A full pass's staging partitions in this machine's worker processes (``unioncat.dedupe_parts``, side by
    side on SQLite): a worker SIGKILLed mid-partition stops the pass with the one clear error, and the pass run
    again ends where the pass in one process ends — every dedupe table the same."""
    monkeypatch.setattr(dedupe_parts, "LOCAL_AFTER", 1000)
    sources = bench.consortium(tmp_path, 20000, seed=24)
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=tmp_path / "killed"))
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.normalise_stage(cat, workers=1)
        shutil.copytree(tmp_path / "killed", tmp_path / "alone")
        cat.settings = replace(cat.settings, dedupe_workers=2)
        died = killed_midway(lambda: pipeline.dedupe_stage(cat), lambda: True)
        assert "of the dedupe's stage partitions was killed by a signal (SIGKILL" in str(died), died
        pipeline.dedupe_stage(cat)
    finally:
        cat.close()
    alone = pipeline.Catalogue(load_settings(env={"UNIONCAT_DEDUPE_WORKERS": "1"}, sources_path=sources,
                                             data_dir=tmp_path / "alone"))
    try:
        pipeline.dedupe_stage(alone)
    finally:
        alone.close()
    assert dedupe_digest.digests(f"sqlite:///{tmp_path / 'killed' / 'unioncat.db'}") == \
        dedupe_digest.digests(f"sqlite:///{tmp_path / 'alone' / 'unioncat.db'}")
