"""A dedupe pass cut into partitions that real rq workers take decides exactly what the pass in one job decides.

The synthetic consortium of ``bench/scale.py`` (6,000 member records: editions, Chinese records,
seven ILS styles) is harvested and normalised once into a real PostgreSQL database, copied, and
deduplicated twice: in one process (the default), and by ``unioncat worker`` processes on a real
redis-server with ``UNIONCAT_DEDUPE_PARTITIONS`` set — one of them SIGKILLed while it stages or scores a
partition.  The SHA-256 of the ordered rows of ``clusters`` (their ``created_seq`` too: the age that
decides "the oldest id wins" later), ``dedupe_members``, ``dedupe_pairs`` and ``cluster_redirects``
(``bench/dedupe_digest.py``) must be equal; so must they after every partition is run once more (a
re-run job), and ``bench/dedupe_rq.py`` runs end to end at a tiny size.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry

from dedupe import fullpass, staging
from dedupe.evidence import EvidenceStore
from dedupe.partition import seq_ranges
from peers.postgres import drop_database
from storage.db import get_value
from test_jobs import proctree
from unioncat import dedupe_parts, pipeline
from unioncat.dedupe_jobs import DEDUPE_QUEUE
from unioncat.dedupe_parts import dedupe_part
from unioncat.jobs import JobPolicy, RqRunner
from unioncat.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_dedupe_rq", REPO / "bench" / "dedupe_rq.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
PARTS = 3


@pytest.fixture(scope="module")
def normalised_base(tmp_path_factory, postgres_server):
    """The consortium normalised into a PostgreSQL database (dropped at the end)."""
    work = tmp_path_factory.mktemp("partitions")
    sources = bench.consortium(work, 6000, seed=3)   # enough scoring that the second worker gets a partition
    url = bench.normalised(sources, work / "base-var", postgres_server)
    yield postgres_server, url, sources, work
    drop_database(postgres_server, url)


def in_process(server: str, base: str, sources: Path, work: Path) -> dict:
    url = bench.copy_of(server, base, f"t_{uuid.uuid4().hex[:10]}")
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=work / "one", db_url=url))
    try:
        report = pipeline.dedupe_stage(cat)
        assert report.records_changed > 2900 and report.pairs_compared > 0
    finally:
        cat.close()
    out = bench.digests(url)
    drop_database(server, url)
    return out


def test_local_partitions_on_postgresql_decide_like_one_process(normalised_base, monkeypatch):
    """Without rq, on PostgreSQL: the pass's partitions in this machine's worker processes (two, side by side)
    leave every dedupe table as the pass in one process does."""
    server, base, sources, work = normalised_base
    reference = in_process(server, base, sources, work)     # 3,000 records: under the threshold, one process
    monkeypatch.setattr(dedupe_parts, "LOCAL_AFTER", 100)
    url = bench.copy_of(server, base, f"t_{uuid.uuid4().hex[:10]}")
    cat = pipeline.Catalogue(load_settings(env={"UNIONCAT_DEDUPE_WORKERS": "2"}, sources_path=sources,
                                           data_dir=work / "local", db_url=url))
    said: list[str] = []
    try:
        pipeline.dedupe_stage(cat, progress=said.append)
    finally:
        cat.close()
    assert {m for m in said if m.endswith("2/2 partitions done")} == {
        f"dedupe {task}: 2/2 partitions done" for task in ("stage", "score", "merge")}
    assert bench.digests(url) == reference
    drop_database(server, url)


def test_partitioned_by_rq_workers_decides_like_one_process_even_with_a_worker_killed(normalised_base, redis_url):
    server, base, sources, work = normalised_base
    reference = in_process(server, base, sources, work)
    assert int(reference["pairs"].split(":")[0]) > 1000 and int(reference["clusters"].split(":")[0]) > 500

    url = bench.copy_of(server, base, f"t_{uuid.uuid4().hex[:10]}")
    env = dict(os.environ, UNIONCAT_DB=url, UNIONCAT_REDIS=redis_url, UNIONCAT_DEDUPE_PARTITIONS=str(PARTS),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    runner = RqRunner.from_url(redis_url, JobPolicy(heartbeat=1))
    workers: dict[str, subprocess.Popen] = {}

    def start(name: str) -> None:
        workers[name] = subprocess.Popen(
            [sys.executable, "-m", "unioncat", "--sources", str(sources), "--data", str(work / "rq"), "worker",
             "--name", name, "--heartbeat", "1", "--retry", "1,1"], env=env, start_new_session=True,
            stdout=open(work / f"{name}.log", "ab"), stderr=subprocess.STDOUT)

    try:
        start("orchestrator")
        job = Job.fetch(runner.enqueue_build_stage("dedupe", False, "test"), connection=runner.connection)
        deadline = time.monotonic() + 120
        while job.get_status(refresh=True) != "started":
            assert time.monotonic() < deadline, (work / "orchestrator.log").read_text()[-3000:]
            time.sleep(0.05)
        start("victim")     # the dedupe link runs on the first worker: this one takes partitions
        started = StartedJobRegistry(queue=runner.queue(DEDUPE_QUEUE))
        killed = None
        while killed is None and time.monotonic() < deadline:
            for job_id in started.get_job_ids(cleanup=False):
                part = Job.fetch(job_id, connection=runner.connection)
                if part.worker_name == "victim":
                    victim = workers["victim"]
                    tree = proctree.tree([victim.pid])   # rq's work horse runs in its own session
                    signal_all(tree, signal.SIGSTOP)
                    if part.get_status(refresh=True) != "started":
                        # listed before it started, or done before it froze: let it go on, catch the next one
                        signal_all(tree, signal.SIGCONT)
                        break
                    killed = part       # frozen mid-partition: kill it there
                    signal_all(tree, signal.SIGKILL)
                    workers.pop("victim").wait()
                    break
            time.sleep(0.02)
        assert killed is not None, "the second worker was not caught in the middle of a partition"
        while job.get_status(refresh=True) not in ("finished", "failed"):
            assert time.monotonic() < deadline + 120, (work / "orchestrator.log").read_text()[-3000:]
            time.sleep(0.2)
        assert job.get_status() == "finished", (work / "orchestrator.log").read_text()[-3000:]
        with pytest.raises(NoSuchJobError):     # recovered, then run by the orchestrator (which deletes it)
            Job.fetch(killed.id, connection=runner.connection)
        assert bench.digests(url) == reference

        # every partition run once more, as rq would re-run a job: nothing changes
        settings = load_settings(env={}, sources_path=sources, data_dir=work / "again", db_url=url)
        cat = pipeline.Catalogue(settings)
        try:
            with cat.members.engine.connect() as conn:
                top = conn.exec_driver_sql("SELECT max(seq) FROM records").scalar()
                epoch = get_value(conn, "dedupe_full_stage_epoch")
            for k, (after, upto) in enumerate(seq_ranges(0, top, PARTS)):
                again = dedupe_part(cat, "stage", {"part": k, "parts": PARTS, "after": after,
                                                   "upto": upto, "epoch": epoch})
                assert again["stored"] > 500
            for k in range(PARTS):
                again = dedupe_part(cat, "score", {"part": k, "parts": PARTS, "changed": None,
                                                   "max_block": settings.max_block,
                                                   "window": settings.block_window})
                assert again["compared"] > 0
                assert dedupe_part(cat, "merge", {"part": k, "parts": PARTS, "batch": 100}) == {"written": 0}
        finally:
            cat.close()
        assert bench.digests(url) == reference
    finally:
        for proc in workers.values():
            proctree.kill_tree(proc.pid)    # stopped first: a horse forked meanwhile would go on with the index link
            proc.wait()
        drop_database(server, url)


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def test_the_bench_runs_one_and_two_workers_and_checks_the_digests(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "dedupe_rq.py"), "--records", "600",
                           "--partitions", "2", "--work", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-5000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["identical_digests"] and len(summary["wall_1_worker_s"]) == len(summary["wall_2_workers_s"]) == 1
    assert summary["ratio_2_to_1"] > 0


@contextmanager
def normalised_catalogue(sources: Path, data_dir: Path) -> Iterator[tuple[Settings, pipeline.Catalogue]]:
    """A catalogue on SQLite with the consortium harvested and normalised, closed afterwards."""
    settings = load_settings(env={}, sources_path=sources, data_dir=data_dir)
    cat = pipeline.Catalogue(settings)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.normalise_stage(cat)
        yield settings, cat
    finally:
        cat.close()


def change_a_twentieth(settings: Settings) -> int:
    """Give every twentieth bibliographic record a new ``seq``: changed, as far as the dedupe can tell."""
    with sqlite3.connect(settings.data_dir / "unioncat.db") as db:
        ids = [r[0] for r in db.execute("SELECT id FROM records WHERE kind = 'bibliographic' ORDER BY id")][::20]
        top = db.execute("SELECT value FROM counters WHERE name = 'record_seq'").fetchone()[0]
        db.executemany("UPDATE records SET seq = ? WHERE id = ?", [(top + n + 1, i) for n, i in enumerate(ids)])
        db.execute("UPDATE counters SET value = ? WHERE name = 'record_seq'", (top + len(ids),))
    return len(ids)


def test_partitions_run_in_turn_on_sqlite_decide_like_one_pass(tmp_path):
    """The partitions alone (no rq, no PostgreSQL): run one after the other in one process, on SQLite —
    a full pass, then an incremental one after 5% of the records changed."""
    sources = bench.consortium(tmp_path, 1500, seed=5)
    digests = []
    for parts in (0, 3):
        with normalised_catalogue(sources, tmp_path / f"p{parts}") as (settings, cat):
            cat.settings = replace(settings, dedupe_partitions=parts)

            def in_turn(task: str, tasks: list[dict]) -> list[dict]:
                return [dedupe_part(cat, task, args) for args in tasks]

            pipeline.dedupe_stage(cat, fanout=in_turn)
            full = bench.digests(settings.database_url)
            changed = change_a_twentieth(settings)
            assert pipeline.dedupe_stage(cat, fanout=in_turn).records_changed == changed
        digests.append((full, bench.digests(settings.database_url)))
    assert digests[0] == digests[1] and int(digests[0][0]["pairs"].split(":")[0]) > 500


def test_local_partitions_side_by_side_on_sqlite_decide_like_one_process(tmp_path, monkeypatch):
    """Without rq, a pass with enough changed records runs its partitions in this machine's worker processes
    (``dedupe_parts.local_partitions``: two here, writing to SQLite side by side) — a full pass, then an
    incremental one after 5% of the records changed — and leaves every dedupe table as one process does."""
    monkeypatch.setattr(dedupe_parts, "LOCAL_AFTER", 100)      # the pass in worker processes from 100 records
    sources = bench.consortium(tmp_path, 3000, seed=6)
    digests = []
    for workers in (1, 2):
        with normalised_catalogue(sources, tmp_path / f"w{workers}") as (settings, cat):
            cat.settings = replace(settings, dedupe_workers=workers)
            said: list[str] = []
            pipeline.dedupe_stage(cat, progress=said.append)
            full = bench.digests(settings.database_url)
            changed = change_a_twentieth(settings)
            assert pipeline.dedupe_stage(cat, progress=said.append).records_changed == changed
            fanned = [m for m in said if "partitions done" in m]
            assert {m.split(":")[0] for m in fanned} == ({"dedupe stage", "dedupe score", "dedupe merge"}
                                                         if workers == 2 else set())
            # what a partition says of its progress in its worker is passed on here
            assert any(m.startswith("dedupe score partition 2/2: scored a batch") for m in said) == (workers == 2)
        digests.append((full, bench.digests(settings.database_url)))
    assert digests[0] == digests[1] and int(digests[0][0]["pairs"].split(":")[0]) > 500


def one_job_and_partitioned(sources: Path, work: Path, parts: int,
                            fanout: Callable[[pipeline.Catalogue], Callable[[str, list[dict]], list[dict]]]
                            ) -> list[dict]:
    """The digests of a full pass in its one job, then of one cut into ``parts`` partitions that
    ``fanout(cat)`` runs — each on the consortium normalised afresh into SQLite."""
    digests = []
    for n in (0, parts):
        with normalised_catalogue(sources, work / f"p{n}") as (settings, cat):
            cat.settings = replace(settings, dedupe_partitions=n)
            assert pipeline.dedupe_stage(cat, fanout=fanout(cat)).records_changed > 0
        digests.append(bench.digests(settings.database_url))
    return digests


def test_a_staging_partition_cut_short_or_run_twice_stages_what_one_run_does(tmp_path, monkeypatch):
    """A staging partition killed half-way is run again (rq's retry), and a job can run twice (a frozen worker
    whose job was requeued wakes up): the second run skips the records the first stored and ends where one
    run ends — none lost, none twice (a record's keys twice would break the keys' unique index)."""
    def cut_short_then_twice(cat: pipeline.Catalogue):
        def fanout(task: str, tasks: list[dict]) -> list[dict]:
            if task == "stage":
                with monkeypatch.context() as patch:    # the first run dies after its first batch
                    patch.setattr(staging, "in_batches", dies_after_one_batch(staging.in_batches))
                    with pytest.raises(KeyboardInterrupt):
                        dedupe_part(cat, task, tasks[1])
                dedupe_part(cat, task, tasks[2])
            return [dedupe_part(cat, task, args) for args in tasks]
        return fanout

    one, cut = one_job_and_partitioned(bench.consortium(tmp_path, 1500, seed=11), tmp_path, 3, cut_short_then_twice)
    assert one == cut and int(one["clusters"].split(":")[0]) > 300


def dies_after_one_batch(in_batches):
    """``staging.in_batches`` in batches of 100 that dies (as a killed worker would) after its first flush."""
    def dying(changes, take, flush):
        flushes = 0

        def flush_then_die() -> None:
            nonlocal flushes
            flush()
            flushes += 1
            if flushes == 1:
                raise KeyboardInterrupt("killed after its first batch")
        in_batches(changes, take, flush_then_die, size=100)
    return dying


def test_a_partitioned_staging_interrupted_goes_on_without_emptying_what_it_staged(tmp_path, monkeypatch):
    """The orchestrator dies while staging partitions run (a deploy, a reboot): the pass run again stages
    only what is left — its partitions skip the records stored — rather than empty the store and stage
    every record again (two hours of a 50M pass)."""
    sources = bench.consortium(tmp_path, 900, seed=17)
    with normalised_catalogue(sources, tmp_path / "one") as (settings, cat):
        pipeline.dedupe_stage(cat)
    one = bench.digests(settings.database_url)
    restarts = []
    restart = EvidenceStore.restart
    monkeypatch.setattr(EvidenceStore, "restart", lambda self, then=None: restarts.append(1) or restart(self, then))
    with normalised_catalogue(sources, tmp_path / "cut") as (settings, cat):
        cat.settings = replace(settings, dedupe_partitions=3)
        interrupted = []

        def dies_after_one(task: str, tasks: list[dict]) -> list[dict]:
            if task == "stage" and not interrupted:
                interrupted.append(dedupe_part(cat, task, tasks[0]))
                raise KeyboardInterrupt("the orchestrator was killed")
            return [dedupe_part(cat, task, args) for args in tasks]

        with pytest.raises(KeyboardInterrupt):
            pipeline.dedupe_stage(cat, fanout=dies_after_one)
        report = pipeline.dedupe_stage(cat, fanout=dies_after_one)
    assert interrupted[0]["stored"] > 200 and report.resumed.startswith("staging")
    assert restarts == [1] and bench.digests(settings.database_url) == one


def test_a_staging_partition_of_a_replaced_attempt_writes_nothing(tmp_path):
    """An orchestrator died and rq ran the pass again: the partitions it had queued must not write beside the
    new attempt's (a deploy may have changed the matcher meanwhile).  They carry the old epoch and stop."""
    def replaced_first(cat: pipeline.Catalogue):
        def fanout(task: str, tasks: list[dict]) -> list[dict]:
            if task == "stage":
                with cat.members.engine.begin() as conn:      # a newer attempt began
                    newer = fullpass.new_epoch(conn)
                with pytest.raises(fullpass.StaleStaging):
                    dedupe_part(cat, task, tasks[0])
                with cat.members.engine.connect() as conn:
                    assert conn.exec_driver_sql("SELECT count(*) FROM dedupe_features").scalar() == 0
                    assert conn.exec_driver_sql("SELECT count(*) FROM dedupe_members").scalar() == 0
                tasks = [{**args, "epoch": newer} for args in tasks]
            return [dedupe_part(cat, task, args) for args in tasks]
        return fanout

    one, fenced = one_job_and_partitioned(bench.consortium(tmp_path, 600, seed=13), tmp_path, 2, replaced_first)
    assert one == fenced and int(one["clusters"].split(":")[0]) > 100


def test_creation_order_does_not_follow_the_order_partitions_merge_in(tmp_path):
    """rq workers merge their id ranges in any order; the clusters' ``created_seq`` ("the oldest id wins" when
    they merge later) is what the one-process pass gives them all the same (here: the ranges merged last first)."""
    def backwards(cat: pipeline.Catalogue):
        return lambda task, tasks: [dedupe_part(cat, task, args) for args in tasks[::-1]][::-1]

    one, cut = one_job_and_partitioned(bench.consortium(tmp_path, 800, seed=7), tmp_path, 3, backwards)
    assert one == cut and int(one["clusters"].split(":")[0]) > 100


def test_a_partition_logs_its_start_and_end(tmp_path, caplog):
    """Staff follow a long partitioned pass in the workers' logs."""
    with normalised_catalogue(bench.consortium(tmp_path, 100, seed=9), tmp_path / "var") as (_, cat):
        with caplog.at_level("INFO", logger="dedupe.build"):
            dedupe_part(cat, "merge", {"part": 1, "parts": 2, "batch": 10})
    assert "dedupe merge partition 2/2 started" in caplog.text
    assert "dedupe merge partition 2/2 finished in" in caplog.text and "{'written': 0}" in caplog.text
