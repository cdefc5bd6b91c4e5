"""Harvest + build throughput through rq workers into PostgreSQL: one worker against two.

    python bench/jobs.py --records 20000

Builds the member dumps of ``bench/pipeline.py`` (N LoC records shared out
among the seven demo members, every member a file here so the OAI provider
is not what is measured), starts a throwaway PostgreSQL cluster and a
redis-server (the test fixtures' code), and for each configuration starts
from an empty database: queue one harvest job per member, wait until the
queues are empty (each harvest queues a build; builds coalesce into a chain
of normalise slices, dedupe, index) and time it.  Same-process baselines on
the same data in the same run: ``pipeline.harvest`` + ``pipeline.build`` in
one process on SQLite and on PostgreSQL.  Peak RSS is the largest worker or
job process.
"""
from __future__ import annotations

import argparse
import importlib.util
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
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from peers.postgres import create_database, running_postgres  # noqa: E402
from peers.redis_server import running_redis  # noqa: E402
from unioncat import pipeline  # noqa: E402
from demo.consortium import MEMBERS  # noqa: E402
from unioncat.jobs import RqRunner  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_pipeline", REPO / "bench" / "pipeline.py")
bench_pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_pipeline)


def sources_file(work: Path) -> Path:
    entries = []
    for m in MEMBERS:
        name = f"{m.id}.{'xml' if m.container == 'oai' else 'mrc'}"
        entries.append({"id": m.id, "name": m.id, "region": "R" + str(len(m.id) % 3), "protocol": "file",
                        "path": str(work / "dumps" / name), "holdings": bench_pipeline.HOLDINGS[m.id],
                        "format": "cnmarc" if m.id == "njust" else "marcxml" if m.container == "oai" else "marc21"})
    path = work / "sources.yaml"
    path.write_text(yaml.safe_dump({"consortium": {"name": "Bench"}, "sources": entries}), encoding="utf-8")
    return path


def in_process(sources: Path, data: Path, db_url: str | None) -> dict:
    settings = load_settings(env={}, sources_path=sources, data_dir=data, db_url=db_url)
    cat = pipeline.Catalogue(settings)
    try:
        t = time.perf_counter()
        pipeline.harvest(cat, pipeline.select_sources(cat))
        harvest_s = time.perf_counter() - t
        pipeline.build(cat)
        total_s = time.perf_counter() - t
        return {"harvest_s": harvest_s, "total_s": total_s, "records": cat.records.count(),
                "clusters": cat.clusters.count()}
    finally:
        cat.close()


def with_workers(n: int, sources: Path, data: Path, db_url: str, redis_url: str) -> dict:
    env = dict(os.environ, UNIONCAT_DB=db_url, UNIONCAT_REDIS=redis_url,
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    runner = RqRunner.from_url(redis_url)
    runner.connection.flushall()
    settings = load_settings(env={}, sources_path=sources, data_dir=data, db_url=db_url)
    pipeline.Catalogue(settings).close()  # schema in place before the clock starts
    procs = [subprocess.Popen([sys.executable, "-m", "unioncat", "--sources", str(sources), "--data", str(data),
                               "worker", "--name", f"bench-{i}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(data.parent / f"worker-{n}-{i}.log", "wb"))
            for i in range(n)]
    try:
        while runner.status()["workers"] < n:
            time.sleep(0.1)
        t = time.perf_counter()
        for m in MEMBERS:
            runner.harvest(m.id, requested_by="bench")
        quiet = 0
        while quiet < 3:
            quiet = quiet + 1 if runner.idle() else 0
            time.sleep(0.2)
        total_s = time.perf_counter() - t - 0.4  # the two extra quiet looks
        status = runner.status()
        assert not status["failed"], status["failed"]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    cat = pipeline.Catalogue(settings)
    try:
        runs = [r for r in cat.raw.runs(limit=100)]
        first = min(r["started_at"] for r in runs)
        last = max(r["finished_at"] for r in runs)
        with cat.engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        return {"harvest_s": (last - first).total_seconds(), "total_s": total_s, "records": cat.records.count(),
                "clusters": cat.clusters.count(), "db_bytes": size}
    finally:
        cat.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000, help="LoC base records (≤ 250,000)")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="unioncat-bench-jobs-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    counts = bench_pipeline.build_members(args.records, work / "dumps", args.cache)
    member_records = sum(counts.values())
    sources = sources_file(work)
    print(f"{member_records} member records from {args.records} LoC records", flush=True)
    results = {}
    with running_postgres() as server, running_redis() as redis_url:
        results["in-process, SQLite"] = in_process(sources, work / "sqlite", None)
        print("in-process SQLite", results["in-process, SQLite"], flush=True)
        results["in-process, PostgreSQL"] = in_process(sources, work / "pg0", create_database(server))
        print("in-process PostgreSQL", results["in-process, PostgreSQL"], flush=True)
        for n in (1, 2):
            key = f"{n} worker{'s' if n > 1 else ''}, PostgreSQL + Redis"
            results[key] = with_workers(n, sources, work / f"w{n}", create_database(server), redis_url)
            print(key, results[key], flush=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    base = results["in-process, SQLite"]["total_s"]
    print(f"\nunioncat jobs benchmark — {args.records} LoC records → {member_records} member records "
          f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()})")
    print("| configuration | harvest | harvest + build | end to end vs in-process SQLite | records | clusters |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        print(f"| {key} | {member_records / r['harvest_s']:,.0f} rec/s | {member_records / r['total_s']:,.0f} rec/s "
              f"({r['total_s']:.1f} s) | {base / r['total_s']:.2f}× | {r['records']:,} | {r['clusters']:,} |")
    print(f"peak RSS of the largest worker/job process: {peak:.0f} MB")
    size = results["2 workers, PostgreSQL + Redis"]["db_bytes"]
    print(f"PostgreSQL database: {size / 2**20:,.0f} MB, {size / member_records / 1024:.1f} KB per member record")
    print(json.dumps({"member_records": member_records, **results}, default=str))


if __name__ == "__main__":
    main()
