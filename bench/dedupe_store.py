"""Benchmark the dedupe stage alone on a copy of an already normalised store: full, then a 1% change.

    python bench/dedupe_store.py --store /path/to/unioncat.db [--workers 1]

The store (an SQLite database that ``bench/dedupe.py`` or a build harvested
and normalised) is copied with SQLite's backup API and its dedupe state
cleared, so two versions of the code (or 1 and 2 workers) are measured on
the same records, one after the other, under the same load.  The full
dedupe runs in a forked child (its CPU-seconds and peak RSS are its own);
then 1% of the bibliographic records get a new sequence number — changed as
far as the dedupe can tell — and the incremental dedupe runs in another
child.  Prints one JSON document with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.load import parse_sources  # noqa: E402
from dedupe_child import dedupe_in_child  # noqa: E402
from filepeak import PeakSize  # noqa: E402
from unioncat.settings import Settings  # noqa: E402

#: What a dedupe pass writes: cleared in the copy so the first pass is a full one.
DEDUPE_TABLES = ("dedupe_members", "dedupe_pending", "dedupe_features", "dedupe_pairs", "dedupe_class_pairs", "dedupe_keys",
                 "dedupe_walk",
                 "clusters", "cluster_redirects")


def copy_store(source: Path, target: Path) -> int:
    """The store copied, dedupe state cleared; returns its live bibliographic records."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in DEDUPE_TABLES:
            if table in tables:
                db.execute(f"DELETE FROM {table}")
        db.execute("DELETE FROM counters WHERE name IN ('dedupe_from_record_seq', 'index_from_cluster_seq')"
                   " OR name LIKE 'dedupe_full_%'")
        return db.execute("SELECT count(*) FROM records WHERE deleted = 0 AND kind = 'bibliographic'").fetchone()[0]


def copied(store: Path, tmp: Path, **extra) -> tuple[int, Settings, object]:
    """The store copied under ``tmp/var`` (:func:`copy_store`): its live records, settings, and one file
    source per member found in it."""
    data = tmp / "var"
    data.mkdir()
    db = data / "unioncat.db"
    records = copy_store(store, db)
    with sqlite3.connect(db) as conn:
        members = [r[0] for r in conn.execute("SELECT DISTINCT source FROM records ORDER BY source")]
    sources = parse_sources({"consortium": {"name": "bench"}, "sources": [
        {"id": m, "name": m, "region": "bench", "protocol": "file", "path": f"{tmp}/{m}.mrc"} for m in members]},
        "<bench>")
    return records, Settings(data_dir=data, sources_path=data / "sources.yaml", **extra), sources


def touch(target: Path, share: float) -> int:
    """Give ``share`` of the bibliographic records new sequence numbers (the next dedupe sees them changed)."""
    with sqlite3.connect(target) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM records WHERE deleted = 0 AND kind = 'bibliographic'")]
        chosen = sorted(random.Random(1).sample(ids, max(1, int(len(ids) * share))))
        top = db.execute("SELECT value FROM counters WHERE name = 'record_seq'").fetchone()[0]
        db.executemany("UPDATE records SET seq = ? WHERE id = ?", [(top + n + 1, i) for n, i in enumerate(chosen)])
        db.execute("UPDATE counters SET value = ? WHERE name = 'record_seq'", (top + len(chosen),))
    return len(chosen)


def measured(settings: Settings, sources) -> dict:
    with PeakSize(settings.data_dir / "unioncat.db-wal") as wal:
        report, wall, cpu, rss = dedupe_in_child(settings, sources)
    keep = ("records_changed", "pairs_compared", "pairs_prefiltered", "records_evaluated", "records_reclustered",
            "total_clusters", "clusters_written", "rejected_pairs")
    return {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(rss),
            "peak_wal_mb": round(wal.peak / 2 ** 20, 1),
            "refused_blocks": len(report["refused_keys"]), "split_blocks": len(report.get("split_keys", ())),
            **{k: report[k] for k in keep if k in report}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a normalised unioncat.db")
    parser.add_argument("--change", type=float, default=0.01, help="share of records changed (default 0.01)")
    parser.add_argument("--workers", type=int,
                        help="scoring worker processes (UNIONCAT_DEDUPE_WORKERS; default: the product's, one per core)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-dedupe-store-") as tmp:
        extra = {} if args.workers is None else {"dedupe_workers": args.workers}
        records, settings, sources = copied(args.store, Path(tmp), **extra)
        db = settings.data_dir / "unioncat.db"
        full = measured(settings, sources)
        changed = touch(db, args.change)
        again = measured(settings, sources)
        size_mb = db.stat().st_size / 2 ** 20
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores", "workers": args.workers,
        "member_records": records, "full": full, "records_changed": changed, "incremental": again,
        "ratio_cpu": round(again["cpu_seconds"] / full["cpu_seconds"], 4),
        "records_per_cpu_s": round(records / full["cpu_seconds"]), "database_mb": round(size_mb),
        "load_average": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
