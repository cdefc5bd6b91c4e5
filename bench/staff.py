"""Benchmark the staff overview for a consortium of 130 members with a year of daily runs.

    python bench/staff.py [--members 130] [--runs 365] [--requests 30] [--json]

Builds a temporary SQLite database (WAL) with ``--members`` sources, ``--runs`` finished harvest runs
each (one record-count row per run, every tenth run failed) and 200 raw records per member, then
times ``/staff/status.json``, ``/staff/`` (HTML with sparklines) and ``/metrics`` through the Flask test
client (p50 / p95 / max in ms, and peak RSS).  Baseline, same process: ``RawStore.last_runs()`` alone,
the one query the old status page was built on.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from consortium.load import parse_sources  # noqa: E402
from storage.db import make_engine, metadata, sqlite_url, utcnow  # noqa: E402
from harvester.ops import OpsStore  # noqa: E402, F401 - registers the tables
from harvester.store import RawStore  # noqa: E402
from harvester.stores.records import raw_records  # noqa: E402
from harvester.stores.runs import harvest_runs, record_counts  # noqa: E402
from web import create_app  # noqa: E402
from web.accounts import Accounts  # noqa: E402


class NoIndex:
    def search(self, *a, **k):  # pragma: no cover - not searched here
        raise NotImplementedError

    def count(self) -> int:
        return 0


def build(folder: Path, members: int, runs: int):
    regions = ["Nanjing", "Suzhou", "Wuxi", "Changzhou", "Xuzhou"]
    sources = parse_sources({"consortium": {"name": "Bench"}, "sources": [
        {"id": f"m{i:03d}", "name": f"Member {i}", "region": regions[i % len(regions)], "protocol": "file",
         "path": f"m{i}.mrc", "schedule": "daily"} for i in range(members)]}, folder / "sources.yaml")
    engine = make_engine(sqlite_url(folder / "bench.db"))
    metadata.create_all(engine)
    now = utcnow()
    with engine.begin() as conn:
        for i in range(members):
            source = f"m{i:03d}"
            rows = [dict(source=source, protocol="file", full=True, status="failed" if r % 10 == 0 else "ok",
                         started_at=now - timedelta(days=runs - r), finished_at=now - timedelta(days=runs - r) +
                         timedelta(seconds=30), added=5, updated=3, deleted=1, unchanged=100, quarantined=0,
                         resumed=False) for r in range(runs)]
            conn.execute(insert(harvest_runs), rows)
            conn.execute(insert(record_counts), [dict(source=source, run_id=None, at=now, records=1000 + r)
                                                 for r in range(runs)])
            conn.execute(insert(raw_records), [dict(
                source=source, local_id=f"r{n}", deleted=False, format="marc21", syntax="iso2709", payload=b"x",
                content_hash=str(n), first_seen=now, seen_at=now, changed_at=now, seq=i * 1000 + n)
                for n in range(200)])
    return sources, engine


def timed(client, path: str, n: int) -> dict:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (n - 1))], 1),
            "max_ms": round(times[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=130)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sources, engine = build(Path(tmp), args.members, args.runs)
        Accounts(engine).add("bench", "bench-password", "viewer")
        app = create_app({"SOURCES": sources, "DB_ENGINE": engine, "SEARCH_BACKEND": NoIndex(), "SECRET_KEY": "b",
                          "TESTING": True})
        client = app.test_client()
        with client.session_transaction() as session:
            session["staff"] = "bench"
        store = RawStore(engine)
        start = time.perf_counter()
        for _ in range(args.requests):
            store.last_runs()
        baseline = round((time.perf_counter() - start) * 1000 / args.requests, 1)
        result = {"members": args.members, "runs_per_member": args.runs,
                  "status_json": timed(client, "/staff/status.json", args.requests),
                  "status_html": timed(client, "/staff/", args.requests),
                  "metrics": timed(client, "/metrics", args.requests),
                  "baseline_last_runs_ms": baseline,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        result["status_json_vs_baseline"] = round(result["status_json"]["p50_ms"] / baseline, 1)
        engine.dispose()
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
