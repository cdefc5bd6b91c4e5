"""Benchmark the staff overview for a consortium of 130 (or 1,300) members with a year of daily runs.

    python bench/staff.py [--members 1300] [--runs 365] [--requests 30] [--json]

Builds a temporary SQLite database (WAL) from ``tests/console_env.py`` (the consortium the overview's
tests use: five regions, two groups, every ninth member failing) with ``--runs`` daily runs per member
and 200 raw records each, then times through the Flask test client: ``/staff/status.json`` and
``/staff/`` (first page of 50), a filtered and sorted view (failing members of one region by lag), a
later page, ``?per_page=2000`` (every member in one answer), ``/metrics`` and the contribution ledger from
its stored snapshot (a year of monthly snapshots: the table of every member, sorted, and one member's
page); then the overview and its JSON again with ``STATUS_CACHE_SECONDS=0`` (``_uncached``: as right
after a run started or ended).  Prints p50 / p95 / max in ms and the median CPU time per request,
CPU-seconds beside wall time, peak RSS and the load average.  Baseline, same process:
``RawStore.last_runs()`` alone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from sqlalchemy import insert  # noqa: E402

from console_env import fill_runs, member_id, write_sources  # noqa: E402
from consortium.load import load_sources  # noqa: E402
from storage.db import make_engine, metadata, sqlite_url, utcnow  # noqa: E402
from harvester.ops import OpsStore  # noqa: E402, F401 - registers the tables
from web import usage_store  # noqa: E402, F401 - registers its table
from web.ledger_store import FIGURES, LedgerSnapshots  # noqa: E402
from harvester.store import RawStore  # noqa: E402
from harvester.stores.records import raw_records  # noqa: E402
from web import create_app  # noqa: E402
from web.accounts import Accounts  # noqa: E402

PAGES = {
    "status_json": "/staff/status.json",
    "status_html": "/staff/",
    "filtered_sorted_html": "/staff/?state=failing&region=Suzhou&sort=lag&dir=desc",
    "filtered_sorted_json": "/staff/status.json?state=failing&region=Suzhou&sort=lag&dir=desc",
    "page_3_html": "/staff/?page=3&sort=name",
    "all_members_json": "/staff/status.json?per_page=2000",
    "metrics": "/metrics",
    "ledger_html": "/staff/ledger",
    "ledger_json": "/staff/ledger.json",
    "ledger_sorted_html": "/staff/ledger?sort=original&order=desc",
    "ledger_member_html": "/staff/ledger/m0042",
}


class NoIndex:
    def search(self, *a, **k):  # pragma: no cover - not searched here
        raise NotImplementedError

    def count(self) -> int:
        return 0


def build(folder: Path, members: int, runs: int):
    sources = load_sources(write_sources(folder, members))
    engine = make_engine(sqlite_url(folder / "bench.db"))
    metadata.create_all(engine)
    fill_runs(engine, members, runs)
    now = utcnow()
    snapshots = LedgerSnapshots(engine)  # a year of monthly ledger snapshots, as the ledger job keeps them
    for back in range(12, -1, -1):
        taken = now - timedelta(days=30 * back)
        snapshots.save(taken.strftime("%Y-%m"), [{"member": member_id(i), **{f: (i * 7 + back) % 500 for f in FIGURES}}
                                                 for i in range(members)], taken)
    with engine.begin() as conn:
        for i in range(members):
            conn.execute(insert(raw_records), [dict(
                source=member_id(i), local_id=f"r{n}", deleted=False, format="marc21", syntax="iso2709", payload=b"x",
                content_hash=str(n), first_seen=now, seen_at=now, changed_at=now, seq=i * 1000 + n)
                for n in range(200)])
    return sources, engine


def resources(cpu_start: float, wall_start: float) -> dict:
    """CPU-seconds beside wall time since the starts, peak RSS and the load average (every bench prints them)."""
    return {"cpu_s": round(time.process_time() - cpu_start, 1), "wall_s": round(time.perf_counter() - wall_start, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def signed_in(app):
    """A test client signed in through the form, as staff are (a live server-side session)."""
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text).group(1)
    response = client.post("/staff/login", data={"username": "bench", "password": "bench-password",
                                                 "csrf_token": token})
    assert response.status_code == 302, response.status_code
    return client


def timed(client, path: str, n: int) -> dict:
    """Wall-time p50/p95/max and the CPU-time median: on a loaded machine the CPU time is the steadier figure."""
    times, cpu = [], []
    for _ in range(n):
        start, cpu_start = time.perf_counter(), time.process_time()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (n - 1))], 1),
            "max_ms": round(times[-1], 1), "cpu_p50_ms": round(statistics.median(cpu), 1)}


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
        client = signed_in(app)
        store = RawStore(engine)
        start = time.perf_counter()
        for _ in range(args.requests):
            store.last_runs()
        baseline = round((time.perf_counter() - start) * 1000 / args.requests, 1)
        cpu, wall = time.process_time(), time.perf_counter()
        result = {"members": args.members, "runs_per_member": args.runs, "requests_each": args.requests,
                  **{name: timed(client, path, args.requests) for name, path in PAGES.items()},
                  "baseline_last_runs_ms": baseline}
        cold = signed_in(create_app({"SOURCES": sources, "DB_ENGINE": engine, "SEARCH_BACKEND": NoIndex(),
                                     "SECRET_KEY": "b", "TESTING": True, "STATUS_CACHE_SECONDS": 0}))
        for name in ("status_json", "status_html"):  # every request reads the run tables (a run just ended)
            result[f"{name}_uncached"] = timed(cold, PAGES[name], args.requests)
        result.update(resources(cpu, wall))
        engine.dispose()
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
