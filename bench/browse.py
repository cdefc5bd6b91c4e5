"""Benchmark the browse lists (authors A–Z, subjects, LCC shelf list) on both backends in the same run.

    python bench/browse.py --records 20000 [--es-url URL] [--pages 300]

Documents are ``bench/search_backends.py``'s (real LoC records held by the demo members, cached as JSON
lines under ``$UNIONCAT_CACHE``).  Each backend is built from them, then asked for the pages a reader's
walk asks for: ``browse(kind, start, size=20, neighbours=3)`` (what ``/browse/<list>`` asks) from starts
drawn from the catalogue's own headings and class numbers, plus the next page from each page's cursor.
Prints per kind the latency p50/p95/p99/max (client wall clock), and for the run CPU-seconds beside
wall time, peak RSS and the load average (the machine is shared).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_search_backends", REPO / "bench" / "search_backends.py")
sb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sb)  # puts the repository and tests/ on sys.path

KINDS = (("author", ""), ("subject", ""), ("shelf", "lcc"))


def starts(path: Path, count: int, seed: int = 11) -> dict[str, list[str]]:
    """What readers type to start from: a heading's first 1–6 characters, or a class number's letters and digits."""
    rng = random.Random(seed)
    pool: dict[str, list[str]] = {"author": [], "subject": [], "shelf": []}
    for doc in sb.read_docs(path):
        pool["author"] += doc.get("authors", [])[:1]
        pool["subject"] += doc.get("subjects", [])[:1]
        pool["shelf"] += [c["value"] for c in doc.get("classifications", []) if c["scheme"] == "lcc"][:1]
    return {kind: [v[:rng.randint(1, 6)] if kind != "shelf" else v.split(" ")[0]
                   for v in rng.sample(values, min(count, len(values)))] for kind, values in pool.items()}


def walk(backend, kind: str, scheme: str, firsts: list[str]) -> dict:
    times, entries, cpu = [], 0, time.process_time()
    for start in firsts:
        t = time.perf_counter()
        page = backend.browse(kind, start, scheme=scheme, size=20, neighbours=3)
        times.append((time.perf_counter() - t) * 1000)
        entries += len(page.entries)
        if page.entries and page.more_after:
            t = time.perf_counter()
            backend.browse(kind, page.entries[-1].key, scheme=scheme, size=20)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))]
    return {"pages": len(times), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": times[-1],
            "cpu_ms_per_page": (time.process_time() - cpu) * 1000 / max(len(times), 1),
            "entries_per_first_page": entries / max(len(firsts), 1)}


def run(name: str, backend, path: Path, firsts: dict[str, list[str]], results: dict) -> None:
    n, secs = sb.build(backend, path)
    for kind, scheme in KINDS:
        walk(backend, kind, scheme, firsts[kind][:20])  # warm-up
        results[(name, kind)] = {"docs": n, "build_docs_per_s": n / secs, **walk(backend, kind, scheme, firsts[kind])}
        print(name, kind, json.dumps(results[(name, kind)]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000, help="LoC records (≤ 250,000)")
    ap.add_argument("--pages", type=int, default=300, help="first pages per list")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--es-url", help="an Elasticsearch cluster to use (default: start a local node)")
    ap.add_argument("--embedded-only", action="store_true", help="skip Elasticsearch (scaling runs)")
    args = ap.parse_args()
    wall, cpu = time.perf_counter(), time.process_time()
    path = sb.documents(args.records, args.cache)
    firsts = starts(path, args.pages)
    results: dict = {}

    from index.embedded import EmbeddedIndex
    embedded = EmbeddedIndex(Path(tempfile.mkdtemp(prefix="unioncat-bench-browse-")) / "index")
    run("embedded", embedded, path, firsts, results)
    embedded.close()
    if not args.embedded_only:
        run_elasticsearch(args.es_url, path, firsts, results)
    report(args.records, wall, cpu, results)


def run_elasticsearch(url: str | None, path: Path, firsts: dict[str, list[str]], results: dict) -> None:
    node = None
    if not url:
        from peers import elastic
        node = elastic.ElasticNode(elastic.distribution(), Path(tempfile.mkdtemp(prefix="unioncat-es-"))).start()
        url = node.url
    from index.elastic import ElasticsearchBackend
    es = ElasticsearchBackend(url, index="bench-browse", request_timeout=120)
    try:
        run("elasticsearch", es, path, firsts, results)
    finally:
        es.client.indices.delete(index="bench-browse-v*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
        if node is not None:
            node.stop()


def report(records: int, wall: float, cpu: float, results: dict) -> None:
    print(f"\n{records} LoC records; wall {time.perf_counter() - wall:.0f} s, this process's CPU "
          f"{time.process_time() - cpu:.0f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print("| backend | list | pages | p50 | p95 | p99 | max | CPU per page (this process) |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, kind), r in results.items():
        print(f"| {name} | {kind} | {r['pages']} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | "
              f"{r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['cpu_ms_per_page']:.1f} ms |")


if __name__ == "__main__":
    main()
