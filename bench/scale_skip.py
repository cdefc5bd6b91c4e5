"""What a rerun of a file harvest costs when the member sent the same dump again.

    python bench/scale_skip.py --records 175000

Writes the first N LoC records as one member's dump and harvests it into a fresh catalogue, then
harvests it again four ways, timing each (wall and CPU-seconds, same process): untouched (skipped
on size + mtime, no read), touched but byte-identical (one whole-file hash), ``--full`` (every
record parsed and hashed — what every rerun cost before the fingerprint), and changed in 1% of
its records (the per-record path, as before).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.config import Source  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from demo.synthetic import revise  # noqa: E402
from harvester.harvest import harvest_source  # noqa: E402
from harvester.store import RawStore  # noqa: E402
from storage.db import make_engine  # noqa: E402
from unioncat.schema import ensure_schema  # noqa: E402


def timed(label: str, source: Source, store: RawStore, full: bool = False) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    report = harvest_source(source, store, full=full)
    out = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "counts": report.counts}
    c = report.counts
    print(f"  {label:<34}{out['wall_s']:>8.2f} s wall {out['cpu_s']:>8.2f} CPU-s   "
          f"+{c.added} ~{c.updated} ={c.unchanged} -{c.deleted}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=175_000)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="unioncat-skip-"))
    dump = work / "member.mrc"
    with open(dump, "wb") as fh:
        for chunk in iter_chunks(loc_file(args.cache), limit=args.records):
            fh.write(chunk)
    old = dump.stat()
    os.utime(dump, ns=(old.st_atime_ns, old.st_mtime_ns - 10**10))  # not "just written" (racy mtime)
    engine = make_engine(f"sqlite:///{work / 'unioncat.db'}")
    ensure_schema(engine)
    store = RawStore(engine)
    source = Source(id="member", name="Member", region="R", protocol="file", path=dump)
    print(f"file harvest of one member's dump, {args.records} records ({dump.stat().st_size / 2**20:.0f} MB), "
          f"load {os.getloadavg()[0]:.2f}")
    timed("first harvest", source, store)
    before = timed("rerun, every record (--full)", source, store, full=True)
    after = timed("rerun, dump untouched", source, store)
    stat = dump.stat()
    os.utime(dump, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = timed("rerun, touched, same bytes", source, store)
    revise(dump)
    stat = dump.stat()
    os.utime(dump, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**10))
    timed("rerun, 1% of the records changed", source, store)
    print(f"  untouched rerun: {before['cpu_s'] / max(after['cpu_s'], 1e-3):.0f}× less CPU than reading every "
          f"record; touched: {before['cpu_s'] / max(touched['cpu_s'], 1e-3):.0f}× less (load {os.getloadavg()[0]:.2f})")
    engine.dispose()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
