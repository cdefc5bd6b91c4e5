"""Benchmark the two search backends on the same documents in the same run.

    python bench/search_backends.py --records 250000

Documents come from real LoC records (``demo.loc``): each record normalised and held by the
demo members ``demo.consortium.holders`` picks (1–7 copies, regions Nanjing / Suzhou / Wuxi), made into
the search document with ``index.documents.to_document`` and cached as JSON lines under
``$UNIONCAT_CACHE`` so a rerun skips that step.  Then, for the embedded (tantivy) backend and for
Elasticsearch (a node started like the tests' fixture, ``tests/peers/elastic.py``, or ``--es-url``):

* docs/s of a full build (``clear`` → ``add`` in batches → ``commit``; for ES: ``streaming_bulk`` into
  a new versioned index, refresh, alias swap);
* search latency p50/p95/p99/max (client-side wall clock) of faceted queries: every query computes all
  six facets; a mix of one- and two-word title queries, facet drill-downs (region, library, language,
  year range) and sorts, the same query list for both backends, after a short warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from dedupe.model import Cluster  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from index.backend import SearchQuery  # noqa: E402
from index.documents import to_document  # noqa: E402
from normaliser import normalise  # noqa: E402
from normaliser.errors import RecordError  # noqa: E402
from normaliser.model import Holding  # noqa: E402
from demo.consortium import holders  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402

LIBRARIES = {"nju": ("Nanjing University Library", "Nanjing"), "seu": ("Southeast University Library", "Nanjing"),
             "njnu": ("Nanjing Normal University Library", "Nanjing"), "suda": ("Soochow University Library", "Suzhou"),
             "xjtlu": ("XJTLU Library", "Suzhou"), "jiangnan": ("Jiangnan University Library", "Wuxi"),
             "njust": ("NJUST Library", "Nanjing")}
BATCH = 5000


def documents(n: int, cache: Path) -> Path:
    """JSON lines of N search documents (built once, then reused)."""
    path = cache / f"bench-search-docs-{n}.jsonl"
    if path.exists():
        return path
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    made = 0
    with open(partial, "w", encoding="utf-8") as out:
        for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
            try:
                rec = normalise(RawRecord(source="loc", local_id=str(i), payload=chunk))
            except RecordError:
                continue
            members = holders(i)
            rec = replace(rec, holdings=[Holding(source=m, local_id=f"{m}-{i}", call_number=f"{m.upper()} {i}",
                                                 location="Stacks") for m in members])
            cluster = Cluster(id=f"c{i:07d}", record=rec, members=[(m, f"{m}-{i}") for m in members])
            out.write(json.dumps(to_document(cluster, LIBRARIES), ensure_ascii=False) + "\n")
            made += 1
            if made % 25_000 == 0:
                print(f"  {made} documents ({made / (time.perf_counter() - started):.0f}/s)", flush=True)
    partial.rename(path)
    print(f"built {made} documents in {time.perf_counter() - started:.0f}s", flush=True)
    return path


def read_docs(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def queries(path: Path, count: int, seed: int = 7) -> list[SearchQuery]:
    """Reader-like faceted queries drawn from the titles, the same list for both backends."""
    rng = random.Random(seed)
    words = []
    for i, doc in enumerate(read_docs(path)):
        if i % 37 == 0:
            words += [w.strip(".,:;/()[]").lower() for w in doc["title"].split() if len(w) > 3 and w.isalpha()]
        if len(words) > 20_000:
            break
    regions = sorted({r for _, r in LIBRARIES.values()})
    out = []
    for k in range(count):
        kind = k % 6
        text = " ".join(rng.sample(words, 1 if kind % 2 else 2)) if kind != 5 else rng.choice(words)
        q = SearchQuery(text=text, limit=20)
        if kind == 1:
            q.filters = {"region": [rng.choice(regions)]}
        elif kind == 2:
            q.filters = {"library": [rng.choice(sorted(LIBRARIES))], "language": ["eng"]}
        elif kind == 3:
            start = rng.randrange(1850, 2000)
            q.filters = {"year": [f"{start}-{start + 20}"]}
            q.sort = "-year"
        elif kind == 4:
            q.text = ""
            q.filters = {"region": [rng.choice(regions)], "format": ["book"]}
            q.sort = "title"
        out.append(q)
    return out


def build(backend, path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    backend.clear()
    batch, n = [], 0
    for doc in read_docs(path):
        batch.append(doc)
        if len(batch) >= BATCH:
            backend.add(batch)
            n += len(batch)
            batch = []
    backend.add(batch)
    n += len(batch)
    backend.commit()
    return n, time.perf_counter() - started


def latencies(backend, qs: list[SearchQuery], warmup: int = 30) -> dict:
    for q in qs[:warmup]:
        backend.search(SearchQuery(**{**q.__dict__, "text": q.text + " warm"}))
    times, hits = [], 0
    for q in qs:
        t = time.perf_counter()
        res = backend.search(SearchQuery(**q.__dict__))
        times.append((time.perf_counter() - t) * 1000)
        hits += res.total > 0
    times.sort()

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))]
    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": times[-1],
            "mean_ms": statistics.fmean(times), "queries": len(qs), "with_hits": hits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=250_000, help="LoC records (≤ 250,000)")
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--es-url", help="an Elasticsearch cluster to use (default: start a local node)")
    ap.add_argument("--es-heap", default="1g", help="heap of the local node (default 1g)")
    args = ap.parse_args()

    path = documents(args.records, args.cache)
    qs = queries(path, args.queries)
    results: dict[str, dict] = {}

    from index.embedded import EmbeddedIndex
    work = Path(tempfile.mkdtemp(prefix="unioncat-bench-search-"))
    embedded = EmbeddedIndex(work / "index")
    n, secs = build(embedded, path)
    results["embedded"] = {"docs": n, "build_s": secs, "docs_per_s": n / secs, **latencies(embedded, qs)}
    embedded.close()
    print("embedded", json.dumps(results["embedded"]), flush=True)

    node = None
    url = args.es_url
    if not url:
        from peers import elastic
        elastic.HEAP = f"-Xms{args.es_heap} -Xmx{args.es_heap}"
        node = elastic.ElasticNode(elastic.distribution(), Path(tempfile.mkdtemp(prefix="unioncat-es-"))).start()
        url = node.url
    from index.elastic import ElasticsearchBackend
    es = ElasticsearchBackend(url, index="bench-search", request_timeout=120)
    try:
        n, secs = build(es, path)
        results["elasticsearch"] = {"docs": n, "build_s": secs, "docs_per_s": n / secs, **latencies(es, qs),
                                    "version": getattr(node, "version", ""), "heap": args.es_heap}
        print("elasticsearch", json.dumps(results["elasticsearch"]), flush=True)
    finally:
        es.client.indices.delete(index="bench-search-v*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
        if node is not None:
            node.stop()

    print(f"\n{args.records} LoC records, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| backend | build docs/s | p50 | p95 | p99 | max | queries with hits |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['docs_per_s']:,.0f} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | "
              f"{r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['with_hits']}/{r['queries']} |")


if __name__ == "__main__":
    main()
