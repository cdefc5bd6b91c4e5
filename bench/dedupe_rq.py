"""A full dedupe on PostgreSQL through rq workers: one worker against two, the pass cut into partitions.

    python bench/dedupe_rq.py --records 50000 [--partitions 8] [--rounds 2]

Generates the synthetic consortium of ``bench/scale.py`` (``demo/synthetic.py``), starts a throwaway
PostgreSQL cluster (the test fixtures' code), and harvests and normalises it once into a base database.
Each run then copies that database (``CREATE DATABASE … TEMPLATE``), starts a redis-server of its own
and N ``unioncat worker`` processes with ``UNIONCAT_DEDUPE_PARTITIONS`` set, queues the build chain's dedupe
link and times it until that job has finished (the workers are then stopped: the index link is not
measured).  Runs alternate 1, 2, 1, 2 … workers back to back; with ``--baseline`` a first run is the
dedupe in its one job (no partitions, one worker).  For each run: wall, CPU-seconds of every worker
(its process tree: the orchestrating dedupe job runs in one of them), of PostgreSQL's server
processes and of this script, the load average before and after, and the SHA-256 of the ordered rows
of ``clusters`` (``created_seq`` included)/``dedupe_members``/``dedupe_pairs``/``cluster_redirects``
(``bench/dedupe_digest.py``) — equal in every run, or the bench fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from peers.postgres import create_database, postmaster, running_postgres  # noqa: E402
from peers.redis_server import running_redis  # noqa: E402
from rq import Worker  # noqa: E402
from rq.job import Job  # noqa: E402

from bench.dedupe_digest import digests  # noqa: E402
from bench.proctree import kill_tree, tree_cpu  # noqa: E402
from demo import synthetic  # noqa: E402
from demo.loc import loc_file  # noqa: E402
from unioncat import pipeline  # noqa: E402
from unioncat.jobs import RqRunner  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

def consortium(work: Path, records: int, seed: int = 14) -> Path:
    """The synthetic consortium's dumps and ``sources.yaml`` under ``work``."""
    cache = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
    mems = synthetic.members()
    g = synthetic.generate(loc_file(cache), work / "dumps", records, seed=seed)
    path = work / "sources.yaml"
    path.write_text(yaml.safe_dump(synthetic.sources_yaml(mems, work / "dumps", g.per_member or {}),
                                   allow_unicode=True), encoding="utf-8")
    return path


def normalised(sources: Path, data: Path, server: str) -> str:
    """A database on ``server`` with the consortium harvested and normalised (not deduplicated), vacuumed
    and analysed: no autovacuum of the fresh load then runs beside the timed runs, and every copy starts
    with the planner's statistics of its tables."""
    import psycopg

    url = create_database(server, "base")
    cat = pipeline.Catalogue(load_settings(env={}, sources_path=sources, data_dir=data, db_url=url))
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.normalise_stage(cat)
    finally:
        cat.engine.dispose()
        cat.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return url


def drop(server: str, name: str) -> None:
    """Drop a run's copy once its digests are taken: at 1M each copy holds gigabytes of pairs."""
    import psycopg

    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_of(server: str, base: str, name: str) -> str:
    """A new database made from ``base``, its files copied and checkpointed before it is returned.

    PostgreSQL 15's default copy (``STRATEGY WAL_LOG``) writes every page through the buffer cache and the
    WAL for the checkpointer to flush later, during the timed run: with it, one run in four at 100k member
    records (not the first) cost PostgreSQL 91 CPU-s against 17–32, and none since ``FILE_COPY`` (the files
    copied between two checkpoints).  The first run after the base is made still costs PostgreSQL ~50 CPU-s
    more at 100k (75–79 s against 40–41 s for the same one-worker run later; mostly system time in its
    backends — not JIT, new WAL segments or dirty pages: BENCHMARKS.md): compare runs after the first, or take
    ``--baseline``'s first run as the one that pays it."""
    import psycopg

    drop(server, name)
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base.rsplit("/", 1)[1]}"{strategy}')
        conn.execute("CHECKPOINT")
    return f"{server}/{name}"


def start_workers(n: int, env: dict, sources: Path, data: Path, logs: Path) -> dict[str, subprocess.Popen]:
    """``n`` workers, by the names they register under."""
    names = [f"w{k}-{time.monotonic_ns()}" for k in range(n)]
    return {name: subprocess.Popen([sys.executable, "-m", "unioncat", "--sources", str(sources), "--data", str(data),
                                    "worker", "--name", name, "--retry", "1,5"],
                                   env=env, stdout=open(logs / f"worker{k}.log", "ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True) for k, name in enumerate(names)}


def log_tails(work: Path, n: int, lines: int = 15) -> str:
    """The last lines of each worker's log: what a failed run says about itself."""
    return "\n".join(f"--- worker{k}.log\n" + "\n".join(
        (work / f"worker{k}.log").read_text(errors="replace").splitlines()[-lines:]) for k in range(n))


def one_run(n: int, partitions: int, db_url: str, sources: Path, work: Path, pg: list[int]) -> dict:
    """Queue the dedupe link on ``n`` fresh workers; wall and CPU until it finished.

    Each run has a redis-server of its own, so no lock, job or worker of an earlier run can reach it.  The
    workers registered must be exactly this run's, and its job a dedupe that changed records (the copy was
    never deduplicated), or the run fails saying what it found, with the workers' logs: once, in a whole
    suite's run, a run's job finished and its database was found untouched, and nothing said why."""
    with running_redis() as redis_url:
        env = dict(os.environ, UNIONCAT_DB=db_url, UNIONCAT_REDIS=redis_url,
                   UNIONCAT_DEDUPE_PARTITIONS=str(partitions),
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        runner = RqRunner.from_url(redis_url)
        workers = start_workers(n, env, sources, work / "var", work)
        while (names := {w.name for w in Worker.all(connection=runner.connection)}) != set(workers):
            if names - set(workers):
                raise SystemExit(f"workers not of this run on its redis-server: {sorted(names - set(workers))}")
            time.sleep(0.2)
        load = os.getloadavg()
        procs = list(workers.values())
        before = {"workers": [tree_cpu([w.pid]) for w in procs], "postgres": tree_cpu(pg),
                  "self": resource.getrusage(resource.RUSAGE_SELF)}
        started = time.perf_counter()
        job = Job.fetch(runner.enqueue_build_stage("dedupe", False, "bench"), connection=runner.connection)
        while (status := job.get_status(refresh=True)) not in ("finished", "failed"):
            time.sleep(0.2)
        wall = time.perf_counter() - started
        per_worker = [round(tree_cpu([w.pid]) - b, 1) for w, b in zip(procs, before["workers"])]
        cpu_pg = tree_cpu(pg) - before["postgres"]
        me = resource.getrusage(resource.RUSAGE_SELF)
        for w in procs:
            kill_tree(w.pid)
            w.wait()
        result = job.return_value() if status == "finished" else None
    if status != "finished" or not (result or {}).get("records_changed"):
        raise SystemExit(f"the dedupe job {status}, returning {result!r}\n{log_tails(work, n)}")
    return {"workers": n, "partitions": partitions, "wall_s": round(wall, 1),
            "cpu_workers_s": per_worker, "cpu_postgres_s": round(cpu_pg, 1),
            "cpu_bench_s": round(me.ru_utime + me.ru_stime - before["self"].ru_utime - before["self"].ru_stime, 1),
            "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
            "records_changed": result["records_changed"], "digests": digests(db_url)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000, help="member records to generate (default 20,000)")
    ap.add_argument("--partitions", type=int, default=8, help="UNIONCAT_DEDUPE_PARTITIONS (default 8)")
    ap.add_argument("--rounds", type=int, default=1, help="pairs of 1-worker and 2-worker runs (default 1)")
    ap.add_argument("--baseline", action="store_true", help="first a run without partitions (one worker)")
    ap.add_argument("--work", help="working folder (default: a new temporary one, removed at the end)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="unioncat-dedupe-rq-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    sources = consortium(work, args.records)
    print(f"generated {args.records} member records in {time.perf_counter() - t:.0f} s", flush=True)
    runs = []
    with running_postgres() as server:
        pg = [postmaster(int(server.rsplit(":", 1)[1]))[0]]
        t = time.perf_counter()
        base = normalised(sources, work / "base-var", server)
        print(f"harvested and normalised into PostgreSQL in {time.perf_counter() - t:.0f} s", flush=True)
        plan = ([(1, 0)] if args.baseline else []) + [(n, args.partitions) for _ in range(args.rounds) for n in (1, 2)]
        for k, (n, parts) in enumerate(plan):
            db = copy_of(server, base, f"run{k}")
            r = one_run(n, parts, db, sources, work, pg)
            runs.append(r)
            print(json.dumps(r), flush=True)
            drop(server, f"run{k}")
    if len({json.dumps(r["digests"], sort_keys=True) for r in runs}) != 1:
        raise SystemExit("the runs disagree: " + json.dumps([r["digests"] for r in runs]))
    one = [r["wall_s"] for r in runs if r["workers"] == 1 and r["partitions"]]
    two = [r["wall_s"] for r in runs if r["workers"] == 2]
    print(json.dumps({"records": args.records, "cores": os.cpu_count(), "host": platform.node(),
                      "wall_1_worker_s": one, "wall_2_workers_s": two,
                      "ratio_2_to_1": round(min(two) / min(one), 3) if one and two else None,
                      "identical_digests": True}))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
