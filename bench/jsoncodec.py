"""µs per ``dumps``/``loads`` of real stored rows: the one codec (``storage/jsoncodec.py``) against the two
it replaced (``dedupe/jsoncodec.py`` and ``normaliser.store``'s ``dumps``/``loads``, read from a checkout
of the older code).

    python bench/jsoncodec.py DATABASE [--old /work/main] [--rows 3000] [--rounds 5]

``DATABASE`` is a deduplicated SQLite catalogue; its ``dedupe_features`` (features and key lists),
``dedupe_class_pairs`` (evidence) and ``records`` rows are decoded once, then each codec writes and reads
them back ``--rounds`` times, alternating codecs; the best round is printed (CPU µs a row), with the
process's CPU-seconds and the load average.  One JSON line per kind of row.
"""
from __future__ import annotations

import __future__
import argparse
import ast
import gc
import json
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage import jsoncodec  # noqa: E402

QUERIES = {
    "features": "SELECT data FROM dedupe_features ORDER BY source, local_id LIMIT ?",
    "key lists": "SELECT block_keys FROM dedupe_features ORDER BY source, local_id LIMIT ?",
    # kept verdicts are stored a pair of feature classes since 2026-12-06 (``dedupe.classpairs``)
    "evidence": "SELECT evidence FROM dedupe_class_pairs ORDER BY a_class, b_class LIMIT ?",
    "records": "SELECT data FROM records WHERE kind = 'bibliographic' ORDER BY id LIMIT ?",
}


def old_codec(old: Path, relative: str) -> SimpleNamespace:
    """``dumps``/``loads`` (and the helpers they call) of a module of the older checkout: only those
    functions are compiled, so the module's tables and imports are left alone."""
    tree = ast.parse((old / relative).read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("dumps", "loads", "_json")]
    namespace: dict = {"json": json, "orjson": orjson}
    flags = __future__.annotations.compiler_flag
    exec(compile(tree, str(old / relative), "exec", flags=flags, dont_inherit=True), namespace)
    return SimpleNamespace(dumps=namespace["dumps"], loads=namespace["loads"])


def best_us(codec, values: list, rounds_done: dict, name: str) -> None:
    """One round: write every value, read every text back; keep the best µs a row of each direction.

    Timed in the process's CPU time with the collector paused: on a shared machine wall time mostly
    measures the neighbours, and a collection would bill one codec for the garbage of the others."""
    gc.collect()
    gc.disable()
    t = time.process_time()
    texts = [codec.dumps(v) for v in values]
    mid = time.process_time()
    back = [codec.loads(s) for s in texts]
    end = time.process_time()
    gc.enable()
    assert back == values, name
    n = len(values)
    dumps_us, loads_us = rounds_done.get(name, (float("inf"), float("inf")))
    rounds_done[name] = (min(dumps_us, (mid - t) / n * 1e6), min(loads_us, (end - mid) / n * 1e6))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("database")
    ap.add_argument("--old", default="/work/main", help="checkout holding the two older codecs")
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    old = Path(args.old)
    codecs = {"dedupe.jsoncodec (old)": old_codec(old, "dedupe/jsoncodec.py"),
              "normaliser.store (old)": old_codec(old, "normaliser/store.py"),
              "storage.jsoncodec": jsoncodec}
    db = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    for kind, query in QUERIES.items():
        values = [json.loads(text) for (text,) in db.execute(query, (args.rows,))]
        cpu0, load = resource.getrusage(resource.RUSAGE_SELF), os.getloadavg()
        best: dict = {}
        for k in range(args.rounds):    # each round in another order: none always runs first
            for name in list(codecs)[k % 3:] + list(codecs)[:k % 3]:
                best_us(codecs[name], values, best, name)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({"rows": kind, "n": len(values), "rounds": args.rounds,
                          "us_per_row": {name: {"dumps": round(d, 2), "loads": round(r, 2)}
                                         for name, (d, r) in best.items()},
                          "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
                          "load": [round(x, 2) for x in load]}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
