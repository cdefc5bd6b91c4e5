"""A normaliser worker process killed mid-stage (the OOM killer) stops the stage with a clear error — it
hung for good before (``unioncat/workerpool.py``) — and the stage run again goes on and loses nothing."""
from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from storage.db import get_value
from test_jobs import proctree
from unioncat import pipeline
from unioncat.catalogue import NORMALISE_CHECKPOINT
from unioncat.settings import load_settings
from unioncat.workerpool import WorkerDied

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_dedupe_rq", REPO / "bench" / "dedupe_rq.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def kill_a_worker(found: list[int], working: Callable[[], bool]) -> None:
    """SIGKILL a worker process of this process's pool once ``working()``: the pool in its steady state, its
    feeder thread writing the next batches while the workers parse.  A worker is a child of this process's
    forkserver — not any other descendant (a test session's PostgreSQL and Redis run under it too)."""
    deadline = time.monotonic() + 60
    while not working() and time.monotonic() < deadline:
        time.sleep(0.01)
    while not found and time.monotonic() < deadline:
        children = proctree.table()[1]
        servers = [pid for pid in children.get(os.getpid(), []) if "multiprocessing.forkserver" in cmdline(pid)]
        workers = [pid for server in servers for pid in children.get(server, [])]
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            found.append(workers[0])
            return
        time.sleep(0.01)


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
        outcome: list = []

        def run() -> None:
            try:
                outcome.append(pipeline.normalise_stage(cat, workers=2))
            except BaseException as exc:    # noqa: BLE001 - handed to the test's thread
                outcome.append(exc)

        killed: list[int] = []
        stage = threading.Thread(target=run, daemon=True)
        stage.start()
        kill_a_worker(killed, lambda: checkpoint(cat) > 0)      # once the first batch is committed
        stage.join(timeout=120)
        assert killed, "no worker process was seen"
        assert not stage.is_alive(), "the normalise stage hung after its worker was killed"
        assert isinstance(outcome[0], WorkerDied), outcome
        assert "run it again" in str(outcome[0])

        again = pipeline.normalise_stage(cat, workers=2)
        with cat.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM records").scalar()
        assert stored == raw                  # every harvested record normalised, once
        assert 0 < again.normalised < raw and again.quarantined == 0      # from the last committed batch on
    finally:
        cat.close()
