"""Benchmark Z39.50 and SRU harvesting through the ctypes ZOOM binding, against a loopback Zebra.

    python bench/zoom.py [--records 10000] [--subset 500]

Loads LoC records (``demo.loc``; cache dir from UNIONCAT_CACHE, default ./.cache) into a Zebra
server on a free loopback port, then measures records/s:

* ZOOM over Z39.50 and over SRU at batch sizes 1 (on a subset), 10, 100, 500;
* two sources harvested in parallel (one connection per thread; ctypes releases the GIL);
* ``harvest_source`` end to end (ZOOM + checkpoints + SQLite raw store) at batch 100;
* the baseline in the same run: ``yaz-client`` fetching the same records (output to /dev/null).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.config import Source  # noqa: E402
from storage.db import make_engine, metadata, sqlite_url  # noqa: E402
from harvester.harvest import harvest_source  # noqa: E402
from harvester.store import RawStore  # noqa: E402
from harvester.clients.zoom import Connection  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from demo import ZEBRA_CONF  # noqa: E402
from publish.zebra_server import start_zebra  # noqa: E402

ALL = '@attr 1=_ALLRECORDS @attr 2=103 ""'


def fetch(url: str, batch: int, limit: int | None, sru: bool) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    kwargs = {"record_schema": "marcxml"} if sru else {"syntax": "usmarc"}
    with Connection(url, batch_size=batch, timeout=60, **kwargs) as conn:
        with conn.search("cql.allRecords=1" if sru else ALL, cql=sru) as rs:
            total = rs.size if limit is None else min(limit, rs.size)
            for offset in range(0, total, batch):
                n += len(rs.records(offset, min(batch, total - offset)))
    return n, time.perf_counter() - start


def parallel(url: str, batch: int, sru: bool, threads: int = 2) -> tuple[int, float]:
    results: list[tuple[int, float]] = []
    start = time.perf_counter()
    workers = [threading.Thread(target=lambda: results.append(fetch(url, batch, None, sru))) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(r[0] for r in results), time.perf_counter() - start


def yaz_client(url: str, total: int, batch: int) -> tuple[int, float]:
    target = url.replace("z3950://", "")
    cmds = [f"format usmarc", f"f {ALL}"] + [f"show {s + 1}+{min(batch, total - s)}" for s in range(0, total, batch)]
    cmds.append("quit")
    start = time.perf_counter()
    subprocess.run(["yaz-client", "-m", os.devnull, target], input="\n".join(cmds) + "\n", text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return total, time.perf_counter() - start


def end_to_end(url: str, protocol: str, work: Path, batch: int) -> tuple[int, float]:
    engine = make_engine(sqlite_url(work / f"bench-{protocol}-{batch}.db"))
    metadata.create_all(engine)
    source = Source(id=f"b{protocol}", name="Bench", region="Bench", protocol=protocol, url=url, timeout=60,
                    options={"batch_size": batch, **({"query": "cql.allRecords=1"} if protocol == "sru" else
                                                     {"query": ALL})})
    start = time.perf_counter()
    report = harvest_source(source, RawStore(engine))
    elapsed = time.perf_counter() - start
    engine.dispose()
    if not report.ok:
        raise SystemExit(f"harvest failed: {report.error}")
    return report.counts.added + report.counts.unchanged, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--subset", type=int, default=500, help="records fetched at batch size 1")
    args = parser.parse_args()
    cache = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-zoom-") as tmp:
        work = Path(tmp)
        folder = work / "records"
        folder.mkdir()
        seen, kept = set(), []
        for chunk in iter_chunks(loc_file(cache), limit=args.records * 2):
            try:
                base = int(chunk[12:17])
                d = chunk[24:base - 1]
                cid = next((chunk[base + int(d[i + 7:i + 12]):base + int(d[i + 7:i + 12]) + int(d[i + 3:i + 7])]
                            for i in range(0, len(d) - 11, 12) if d[i:i + 3] == b"001"), None)
            except ValueError:
                continue
            if cid and cid.strip() not in seen:
                seen.add(cid.strip())
                kept.append(chunk)
            if len(kept) >= args.records:
                break
        (folder / "loc.mrc").write_bytes(b"".join(kept))
        t = time.perf_counter()
        server = start_zebra(folder, record_type="mrc", conf_dir=ZEBRA_CONF, work=work / "zebra")
        index_s = time.perf_counter() - t
        rows = []
        try:
            with Connection(server.url) as conn, conn.search(ALL) as rs:
                total = rs.size
            print(f"Zebra on {server.url}: {total} LoC records indexed in {index_s:.1f} s", flush=True)

            def row(name, batch, result):
                n, s = result
                rows.append((name, batch, n, s, n / s if s else 0))
                print(f"  {name:<34} batch {batch:>4}: {n:>6} records in {s:7.2f} s = {n / s:8.0f} rec/s",
                      flush=True)

            for sru, url in ((False, server.url), (True, server.sru_url)):
                label = "SRU (ZOOM sru=get)" if sru else "Z39.50 (ZOOM)"
                row(label, 1, fetch(url, 1, args.subset, sru))
                for batch in (10, 100, 500):
                    row(label, batch, fetch(url, batch, None, sru))
                row(label + ", 2 in parallel", 100, parallel(url, 100, sru))
            row("harvest_source Z39.50 → store", 100, end_to_end(server.url, "z3950", work, 100))
            row("harvest_source SRU → store", 100, end_to_end(server.sru_url, "sru", work, 100))
            row("yaz-client (baseline)", 1, yaz_client(server.url, min(args.subset, total), 1))
            for batch in (10, 100, 500):
                row("yaz-client (baseline)", batch, yaz_client(server.url, total, batch))
        finally:
            server.stop()
        print()
        print(f"| {'what':<34} | {'batch':>5} | {'records':>7} | {'seconds':>7} | {'rec/s':>7} |")
        print(f"|{'-' * 36}|{'-' * 7}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
        for name, batch, n, s, rate in rows:
            print(f"| {name:<34} | {batch:>5} | {n:>7} | {s:>7.2f} | {rate:>7.0f} |")


if __name__ == "__main__":
    main()
