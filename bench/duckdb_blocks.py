"""DuckDB against our SQLite block store for a full pass's block reads: the question issue 14 left open.

    python bench/duckdb_blocks.py DATABASE sqlite            # the scoring walk as dedupe reads it today
    python bench/duckdb_blocks.py DATABASE duckdb [--in-memory] [--stream]

Needs a catalogue a full dedupe pass has run on (its ``dedupe_keys``, ``dedupe_features`` and ``dedupe_walk``
are kept) and, for the second mode, ``pip install duckdb pyarrow`` (not dependencies of unioncat: this measures it).

``sqlite`` walks the planned blocks ``BATCH`` keys a page, as ``dedupe.blocking`` does, and builds each page's
:class:`~dedupe.blockstore.Batch` through :meth:`BlockStore.batch` — the members of every block and each member's
features and keys, decoded once a page.  ``duckdb`` first copies the keys and the features into DuckDB (what
staging would write there instead: the copy is timed apart), then builds the same batches from it: by page,
with the same two queries (members of the page's keys, then their records' rows), or with ``--stream``, from
one ordered join of every block's members read through in walk order (the out-of-core blocking join the issue
names).  Both modes check what they built against the same digest, so they are known to read the same blocks.
Prints one JSON line: CPU (user + sys) and wall of the copy and of the walk, peak RSS, the digest.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine  # noqa: E402

from dedupe.blocking import BATCH  # noqa: E402
from dedupe.blockstore import Batch, BlockStore, assemble  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Digest:
    """What a walk built, order-free within a page: every block's members and each member's class and keys."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.blocks = self.members = 0

    def add(self, batch: Batch) -> None:
        for key in sorted(batch.members):
            rs = batch.members[key]
            self.h.update(repr((key, sorted(rs))).encode())
            self.blocks += 1
        for r in sorted(batch.features):
            self.h.update(repr((r, batch.classes[r], sorted(batch.keys[r]), sorted(batch.features[r].items()))).encode())
            self.members += 1


class Counted(Digest):
    """Blocks and members counted, nothing hashed: the reads alone."""

    def add(self, batch: Batch) -> None:
        self.blocks += len(batch.members)
        self.members += len(batch.features)


def sqlite_walk(db: str, digest: Digest) -> None:
    store = BlockStore(create_engine(f"sqlite:///{db}"))
    for _, keys in store.walk(BATCH):
        digest.add(store.batch(keys, None))


def duckdb_copy(db: str, target: str):
    """The keys, features and planned walk of ``db`` copied into DuckDB, 50,000 rows at a time as Arrow tables
    (DuckDB's SQLite reader is an extension it downloads, which this machine cannot; ``executemany`` of tuples
    is far slower)."""
    import duckdb
    import sqlite3
    con = duckdb.connect(target)
    src = sqlite3.connect(db)
    con.execute("CREATE TABLE keys (key VARCHAR, source VARCHAR, local_id VARCHAR)")
    con.execute("CREATE TABLE features (source VARCHAR, local_id VARCHAR, data VARCHAR, block_keys VARCHAR, "
                "class_id BIGINT)")
    con.execute("CREATE TABLE walk (pos INTEGER, key VARCHAR)")
    for table, query in (("keys", "SELECT key, source, local_id FROM dedupe_keys"),
                         ("features", "SELECT source, local_id, data, block_keys, class_id FROM dedupe_features"),
                         ("walk", "SELECT pos, key FROM dedupe_walk")):
        cur = src.execute(query)
        while rows := cur.fetchmany(50_000):
            frame = _frame(rows, len(rows[0]))  # noqa: F841 - DuckDB reads the local by its name
            con.execute(f"INSERT INTO {table} SELECT * FROM frame")
    return con


def _frame(rows: list[tuple], width: int):
    """Rows as a pyarrow table DuckDB appends in one call (``executemany`` of tuples is ~100× slower)."""
    import pyarrow as pa
    return pa.table({f"c{i}": [r[i] for r in rows] for i in range(width)})


def duckdb_paged(con, digest: Digest) -> None:
    """Page by page, the two queries :meth:`BlockStore.batch` asks SQLite."""
    last = 0
    while True:
        keys = [k for (k,) in con.execute("SELECT key FROM walk WHERE pos > ? ORDER BY pos LIMIT ?",
                                          [last, BATCH]).fetchall()]
        if not keys:
            return
        last += len(keys)
        con.execute("CREATE OR REPLACE TEMP TABLE page AS SELECT unnest(?::VARCHAR[]) AS key", [keys])
        found: dict[str, list] = defaultdict(list)
        for key, s, loc in con.execute("SELECT k.key, k.source, k.local_id FROM keys k JOIN page USING (key) "
                                       "ORDER BY k.key, k.source, k.local_id").fetchall():
            found[key].append((s, loc))
        raw = {(s, loc): (d, bk, c) for s, loc, d, bk, c in con.execute(
            "SELECT f.source, f.local_id, f.data, f.block_keys, f.class_id FROM features f "
            "SEMI JOIN (SELECT k.source, k.local_id FROM keys k JOIN page USING (key)) h "
            "ON f.source = h.source AND f.local_id = h.local_id").fetchall()}
        digest.add(assemble(found, raw, None))


def duckdb_stream(con, digest: Digest) -> None:
    """One ordered join of every walked block's members with their rows, read through a page of blocks at a time."""
    cur = con.execute(
        "SELECT w.pos, k.key, k.source, k.local_id, f.data, f.block_keys, f.class_id "
        "FROM walk w JOIN keys k USING (key) JOIN features f ON f.source = k.source AND f.local_id = k.local_id "
        "ORDER BY w.pos, k.source, k.local_id")
    found: dict[str, list] = defaultdict(list)
    raw: dict = {}
    page_end = BATCH
    while rows := cur.fetchmany(20_000):
        for pos, key, s, loc, d, bk, c in rows:
            if pos > page_end:
                digest.add(assemble(found, raw, None))
                found, raw, page_end = defaultdict(list), {}, page_end + BATCH
            found[key].append((s, loc))
            raw[(s, loc)] = (d, bk, c)
    if found:
        digest.add(assemble(found, raw, None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("database")
    ap.add_argument("mode", choices=("sqlite", "duckdb"))
    ap.add_argument("--in-memory", action="store_true", help="DuckDB in memory, not in a file beside the database")
    ap.add_argument("--stream", action="store_true", help="one ordered join read through, not two queries a page")
    ap.add_argument("--no-digest", action="store_true", help="count only (the digest's hashing costs ~a third)")
    ap.add_argument("--memory-limit", default="", help="DuckDB's memory_limit (e.g. 256MB: it spills beyond)")
    args = ap.parse_args()
    out: dict = {"mode": args.mode + (" stream" if args.stream else "") + (" memory" if args.in_memory else ""),
                 "load_before": round(os.getloadavg()[0], 2)}
    digest = Counted() if args.no_digest else Digest()
    c0, w0 = cpu(), time.perf_counter()
    if args.mode == "sqlite":
        sqlite_walk(args.database, digest)
    else:
        with tempfile.TemporaryDirectory(dir=Path(args.database).parent) as tmp:
            con = duckdb_copy(args.database, ":memory:" if args.in_memory else str(Path(tmp) / "blocks.duckdb"))
            if args.memory_limit:
                con.execute(f"SET memory_limit = '{args.memory_limit}'")
                out["mode"] += f" limit {args.memory_limit}"
            out["copy_cpu_s"], out["copy_wall_s"] = round(cpu() - c0, 2), round(time.perf_counter() - w0, 1)
            out["duckdb_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
            c0, w0 = cpu(), time.perf_counter()
            (duckdb_stream if args.stream else duckdb_paged)(con, digest)
            con.close()
    out.update(walk_cpu_s=round(cpu() - c0, 2), walk_wall_s=round(time.perf_counter() - w0, 1),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
               blocks=digest.blocks, members=digest.members,
               digest=None if args.no_digest else digest.h.hexdigest()[:16],
               load_after=round(os.getloadavg()[0], 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
