"""The harvest fault suite as a table: each fault against the real OAI-PMH member, one process per case.

    python bench/harvest_faults.py [--records 300] [--page 25]

Each case runs in its own process (so its peak RSS is its own): the ``demo.oai_member`` member on
loopback, the fault proxy of ``tests/peers/fault_proxy.py`` in front of it with one fault armed, a
harvest into a fresh SQLite store — then the store is compared with the member: identifiers lost,
identifiers stored twice.  Prints a Markdown table (outcome, lost, duplicated, requests, wall and CPU
seconds, peak RSS) and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def one(kind: str, records: int, page: int) -> dict:
    """Run one case in this process; what the table needs."""
    from demo.oai_member import make_app, serve
    from harvester.harvest import harvest_source
    from harvester.store import RawStore
    from marc_fixtures import oai_records
    from peers.fault_proxy import FaultProxy
    from storage.db import make_engine, metadata, sqlite_url
    from test_harvest_faults import CASES, member_source

    app = make_app(oai_records(records), batch_size=page)
    url, stop = serve(app)
    proxy = FaultProxy(url)
    fault_kw, source_kw = CASES.get(kind, ({}, {}))
    if kind == "huge":
        source_kw = {}  # the default page cap (max_page_mb 64) against a 200 MB page
    if kind != "none":
        proxy.inject(kind, **fault_kw)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(sqlite_url(Path(tmp) / "faults.db"))
        metadata.create_all(engine)
        store = RawStore(engine)
        started = time.monotonic()
        report = harvest_source(member_source(proxy.url, **source_kw), store)
        wall = time.monotonic() - started
        got = store.local_ids("member")
        engine.dispose()
    proxy.close()
    stop()
    expected = {r.identifier for r in app.records}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"case": kind, "status": report.status, "error": report.error, "lost": len(expected - set(got)),
            "duplicated": sum(n - 1 for n in Counter(got).values() if n > 1), "stored": len(got),
            "requests": len(proxy.log), "wall": round(wall, 2), "cpu": round(usage.ru_utime + usage.ru_stime, 2),
            "rss_mb": round(usage.ru_maxrss / 1024), "huge_sent_mb": round(proxy.huge_sent / 2**20)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--page", type=int, default=25)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.records, args.page)))
        return 0
    from test_harvest_faults import CASES

    print(f"{os.cpu_count()} cores; load average at start {os.getloadavg()}")
    print(f"{args.records} records, pages of {args.page}; each case in its own process\n")
    print("| case | outcome | stored / member | lost | duplicated | requests | wall s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    bad = 0
    for kind in ("none", *sorted(CASES)):
        out = subprocess.run([sys.executable, __file__, "--one", kind, "--records", str(args.records),
                              "--page", str(args.page)], capture_output=True, text=True, cwd=REPO)
        try:
            row = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            print(f"| {kind} | CRASHED | | | | | | | |  {out.stderr[-300:]!r}")
            bad += 1
            continue
        note = f" (stopped reading after the cap; proxy sent {row['huge_sent_mb']} MB)" if kind == "huge" else ""
        print(f"| {kind}{note} | {row['status']} | {row['stored']} / {args.records} | {row['lost']} | "
              f"{row['duplicated']} | {row['requests']} | {row['wall']} | {row['cpu']} | {row['rss_mb']} |")
        bad += row["status"] != "ok" or row["lost"] or row["duplicated"]
    print(f"\nload average at end {os.getloadavg()}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
