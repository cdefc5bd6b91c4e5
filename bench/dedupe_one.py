"""Benchmark the incremental dedupe of a single changed record on an already deduplicated catalogue.

    python bench/dedupe_one.py --data /path/to/var [--records 5]

The issue's bar: one changed record at 5M member records costs under 5 CPU-seconds, i.e. the
incremental pass's fixed cost does not grow with the catalogue.  The catalogue (a build's data
folder, e.g. ``bench/scale.py --keep``'s ``var``) is used in place: each round gives one random
bibliographic record a new sequence number — changed as far as the dedupe can tell, so its
features, blocks, reachable records and entry are all worked again — and runs the dedupe in a
forked child (``dedupe_child``: its own CPU-seconds and peak RSS, process start-up included).  A
record that only got a new number is deduplicated to the same entry, so the catalogue is left as it
was.  Prints one JSON document with every round and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.load import load_sources  # noqa: E402
from dedupe_child import dedupe_in_child  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402


def touch_one(db: Path, rng: random.Random) -> tuple[str, str]:
    """Give one random live bibliographic record the next sequence number; its (source, local id)."""
    with sqlite3.connect(db) as conn:
        top_id = conn.execute("SELECT max(id) FROM records").fetchone()[0]
        row = None
        while row is None:
            row = conn.execute("SELECT id, source, local_id FROM records WHERE id >= ? AND deleted = 0 "
                               "AND kind = 'bibliographic' ORDER BY id LIMIT 1",
                               (rng.randint(1, top_id),)).fetchone()
        seq = conn.execute("SELECT value FROM counters WHERE name = 'record_seq'").fetchone()[0] + 1
        conn.execute("UPDATE records SET seq = ? WHERE id = ?", (seq, row[0]))
        conn.execute("UPDATE counters SET value = ? WHERE name = 'record_seq'", (seq,))
    return row[1], row[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a deduplicated catalogue's data folder")
    parser.add_argument("--sources", type=Path, help="its sources.yaml (default: beside the data folder)")
    parser.add_argument("--records", type=int, default=5, help="rounds, one changed record each (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    db = args.data / "unioncat.db"
    sources_path = args.sources or args.data.parent / "sources.yaml"
    settings = load_settings(env={}, data_dir=args.data, sources_path=sources_path)
    sources = load_sources(sources_path)
    with sqlite3.connect(db) as conn:
        records = conn.execute("SELECT count(*) FROM records WHERE deleted = 0 AND kind = 'bibliographic'").fetchone()[0]
    rng = random.Random(args.seed)
    rounds = []
    for _ in range(args.records):
        key = touch_one(db, rng)
        report, wall, cpu, rss = dedupe_in_child(settings, sources)
        rounds.append({"record": list(key), "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                       "peak_rss_mb": round(rss), "records_reclustered": report["records_reclustered"],
                       "pairs_compared": report["pairs_compared"], "clusters_written": report["clusters_written"],
                       "load_average": os.getloadavg()})
        print(json.dumps(rounds[-1]), file=sys.stderr)
    cpu = [r["cpu_seconds"] for r in rounds]
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores", "member_records": records,
        "cpu_seconds_median": statistics.median(cpu), "cpu_seconds_max": max(cpu),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rounds), "rounds": rounds,
    }, indent=2))


if __name__ == "__main__":
    main()
