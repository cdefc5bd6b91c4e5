"""Benchmark the two search backends on the same documents in the same run.

    python bench/search_backends.py --records 250000
    python bench/search_backends.py --records 1000000 --embedded-only --facets --index /tmp/idx-1m

Documents come from real LoC records (``demo.loc``): each record normalised and held by the
demo members ``demo.consortium.holders`` picks (1–7 copies, regions Nanjing / Suzhou / Wuxi), made into
the search document with ``index.documents.to_document`` and cached as JSON lines under
``$UNIONCAT_CACHE`` so a rerun skips that step.  Beyond the LoC file's 250,000 records, every document
is followed by later editions of it (:func:`editions`, as ``demo.synthetic.edition`` makes them from
MARC): distinct entries with their own id, ISBN, year, holders and sometimes publisher or subtitle,
the same work — derived while streaming, never held or cached.  Then, for the embedded (tantivy) backend and for
Elasticsearch (a node started like the tests' fixture, ``tests/peers/elastic.py``, or ``--es-url``):

* docs/s of a full build (``clear`` → ``add`` in batches → ``commit``; for ES: ``streaming_bulk`` into
  a new versioned index, refresh, alias swap);
* search latency p50/p95/p99/max (client-side wall clock) and CPU per query, mean and p50/p95/p99 (every
  thread of this process: the whole query for the embedded backend, the client's share for Elasticsearch;
  on a shared machine read these, not the wall figures) of faceted queries as the search
  page asks them (twenty works a page, editions grouped: :mod:`index.works`): every query computes all
  seven facets; a mix of one- and two-word title queries, facet drill-downs (region, library,
  language, year range) and sorts, the same query list for both backends, after a short warm-up;
* autocomplete (``suggest``) latency and CPU the same way, for every 2- to 8-character prefix of titles,
  authors and subjects as a reader types them.

The issue's targets (search p95 with all facets ≤ 50 ms embedded at 250k clusters, suggest p95 ≤ 20 ms)
are wall-clock figures on a quiet machine: the load average is printed with every run.  ``--slowest N`` then
prints the N slowest searches and where each spent its CPU (:mod:`search_tail`): with 200 queries a p95 is
the 11th slowest, so it names the queries that decide it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from dedupe.features import work_key  # noqa: E402
from dedupe.model import Cluster  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from index.backend import FACETS, SearchQuery, page_facets  # noqa: E402
from index.documents import to_document  # noqa: E402
from normaliser import normalise  # noqa: E402
from normaliser.errors import RecordError  # noqa: E402
from normaliser.model import Holding  # noqa: E402
from demo.consortium import holders  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from demo.synthetic import PUBLISHERS, SUBTITLES, isbn13  # noqa: E402
from index.documents import sort_key  # noqa: E402
from index.querytext import isbn_forms  # noqa: E402

LIBRARIES = {"nju": ("Nanjing University Library", "Nanjing"), "seu": ("Southeast University Library", "Nanjing"),
             "njnu": ("Nanjing Normal University Library", "Nanjing"), "suda": ("Soochow University Library", "Suzhou"),
             "xjtlu": ("XJTLU Library", "Suzhou"), "jiangnan": ("Jiangnan University Library", "Wuxi"),
             "njust": ("NJUST Library", "Nanjing")}
BATCH = 5000
#: Documents made from LoC records; more are later editions of them (:func:`editions`).
LOC_DOCS = 250_000


def documents(n: int, cache: Path) -> Path:
    """JSON lines of N search documents (built once, then reused)."""
    path = cache / f"bench-search-docs-{n}-w.jsonl"  # "-w": with work keys
    if path.exists():
        return path
    started = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)    # a fresh machine has no cache folder yet
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
            cluster = Cluster(id=f"c{i:07d}", record=rec, members=[(m, f"{m}-{i}") for m in members],
                              work_key=work_key(rec))
            out.write(json.dumps(to_document(cluster, LIBRARIES), ensure_ascii=False) + "\n")
            made += 1
            if made % 25_000 == 0:
                print(f"  {made} documents ({made / (time.perf_counter() - started):.0f}/s)", flush=True)
    partial.rename(path)
    print(f"built {made} documents in {time.perf_counter() - started:.0f}s", flush=True)
    return path


def read_docs(path: Path, n: int | None = None):
    """The documents of ``path``, or ``n`` of them with each followed by its later editions when ``n``
    is more than the file holds (as many editions of each as it takes)."""
    with open(path, encoding="utf-8") as fh:
        if n is None:
            yield from map(json.loads, fh)
            return
        per_doc = -(-n // LOC_DOCS)
        made = 0
        for i, line in enumerate(fh):
            doc = json.loads(line)
            for j in range(per_doc):
                if made == n:
                    return
                yield editions(doc, i, j) if j else doc
                made += 1


def editions(doc: dict, i: int, j: int) -> dict:
    """Edition ``j`` ≥ 1 of document ``i``: the variation ``demo.synthetic.edition`` gives a MARC record (a
    new ISBN, the year two years on per edition, an edition statement, every third a new publisher, every
    fourth a new subtitle), other holders, the same work key; the text fields follow."""
    year = doc["year"] + 2 * j if doc.get("year") else None
    publisher = PUBLISHERS[(i + j) % len(PUBLISHERS)] if j % 3 == 2 else doc.get("publisher", "")
    title = doc["title"]
    if j % 4 == 3:
        title = f"{title.split(':')[0].rstrip()}: {SUBTITLES[i % len(SUBTITLES)]}"
    members = holders(i + j * LOC_DOCS)
    holdings = [{"source": m, "library": LIBRARIES[m][0], "region": LIBRARIES[m][1], "call_number": f"{m.upper()} {i}e{j}",
                 "location": "Stacks", "status": "", "local_id": f"{m}-{i}e{j}", "branch": "", "volume": ""}
                for m in members]
    extra = [title, f"{j + 1}. ed.", publisher, str(year or "")]
    return {**doc, "id": f"{doc['id']}e{j}", "title": title, "title_sort": sort_key(title), "year": year,
            "edition": f"{j + 1}. ed.", "publisher": publisher, "isbns": isbn_forms(isbn13(f"{i}:{j}")),
            "invalid_isbns": [], "holdings": holdings, "libraries": members,
            "regions": list(dict.fromkeys(LIBRARIES[m][1] for m in members)), "library_count": len(members),
            "call_numbers": [h["call_number"] for h in holdings], "all": "\n".join([doc.get("all", ""), *extra])}


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
        q = SearchQuery(text=text, limit=20, group_works=True)  # as the search page asks
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


def build(backend, path: Path, records: int) -> dict:
    """A full build of ``records`` documents: count, wall and CPU seconds (every thread of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    backend.clear()
    batch, n = [], 0
    for doc in read_docs(path, records):
        batch.append(doc)
        if len(batch) >= BATCH:
            backend.add(batch)
            n += len(batch)
            batch = []
    backend.add(batch)
    n += len(batch)
    backend.commit()
    secs, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"built {n} documents: {secs:.0f} s wall, {cpu:.0f} CPU-s ({n / cpu:,.0f} docs/CPU-s), "
          f"load {_load()}", flush=True)
    return {"docs": n, "build_s": secs, "build_cpu_s": cpu, "docs_per_s": n / secs, "docs_per_cpu_s": n / cpu}


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def prefixes(path: Path, count: int, seed: int = 5) -> list[str]:
    """What a reader's keystrokes send to ``/suggest.json``: 2- to 8-character prefixes of titles, authors and
    subjects drawn from the catalogue (one value in 97 records)."""
    rng = random.Random(seed)
    values = []
    for i, doc in enumerate(read_docs(path)):
        if i % 97 == 0:
            values += [doc["title"], *doc.get("authors", [])[:1], *doc.get("subjects", [])[:1]]
    out = [v[:n] for v in rng.sample(values, min(len(values), count // 4 + 1)) for n in (2, 3, 5, 8)]
    return out[:count]


def timed(calls) -> dict:
    """p50/p95/p99/max wall milliseconds of each call, and this process's CPU milliseconds per call (every
    thread: the embedded backend may count facets on a second one): the mean and, call by call, p50/p95/p99 —
    on a shared machine wall percentiles measure the neighbours too, CPU ones only the work."""
    times, cpus, answered = [], [], 0
    for call in calls:
        t, c = time.perf_counter(), time.process_time()
        answered += bool(call())
        times.append((time.perf_counter() - t) * 1000)
        cpus.append((time.process_time() - c) * 1000)
    cpu = statistics.fmean(cpus) if cpus else 0.0
    times.sort()
    cpus.sort()

    def pct(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
    return {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "p99_ms": pct(times, 99), "max_ms": times[-1],
            "mean_ms": statistics.fmean(times), "cpu_ms": cpu, "cpu_p50_ms": pct(cpus, 50),
            "cpu_p95_ms": pct(cpus, 95), "cpu_p99_ms": pct(cpus, 99), "queries": len(times), "answered": answered}


def latencies(backend, qs: list[SearchQuery], typed: list[str], warmup: int = 30) -> dict:
    """Search with all seven facets, with the results page's facets (:func:`index.backend.page_facets`),
    then autocomplete, each after a warm-up of queries not measured."""
    for q in qs[:warmup]:
        backend.search(SearchQuery(**{**q.__dict__, "text": q.text + " warm"}))
    search = timed(lambda q=q: backend.search(SearchQuery(**q.__dict__)).total for q in qs)
    page = timed(lambda q=q: backend.search(SearchQuery(**{**q.__dict__, "facets": page_facets(q.filters)})).total
                 for q in qs)
    for text in typed[:warmup]:
        backend.suggest(text + "w")
    suggest = timed(lambda t=t: backend.suggest(t) for t in typed)
    return {**search, "page": page, "suggest": suggest}


def by_typo_pass(backend, qs: list[SearchQuery]) -> dict[str, dict]:
    """The same searches split by whether they found something as typed or went through the typo pass
    (:mod:`index.forgiving`: only a search that finds nothing pays for it) — p50/p95 wall of each part."""
    parts: dict[str, list[float]] = {"found as typed": [], "typo pass": []}
    for q in qs:
        t = time.perf_counter()
        r = backend.search(SearchQuery(**q.__dict__))
        took = (time.perf_counter() - t) * 1000
        parts["typo pass" if r.corrected or not r.total else "found as typed"].append(took)
    out = {}
    for name, times in parts.items():
        times.sort()
        if times:
            at = lambda p: times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))]  # noqa: E731
            out[name] = {"queries": len(times), "p50_ms": at(50), "p95_ms": at(95)}
    return out


def facet_costs(backend, qs: list[SearchQuery], n: int = 200) -> dict[str, dict]:
    """Where a faceted query's time goes: the same queries with no facet, each facet alone, every facet, and
    the results page's facets."""
    out = {}
    for name, facets in [("none", ()), *((f, (f,)) for f in FACETS), ("all", None), ("page", "page")]:
        backend._facet_cache.clear()  # counted, not remembered from the run above
        backend._answers.clear()
        out[name] = timed(lambda q=q: backend.search(SearchQuery(**{
            **q.__dict__, "facets": page_facets(q.filters) if facets == "page" else facets})).total for q in qs[:n])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=250_000,
                    help="documents: LoC records up to 250,000, later editions of them beyond")
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--es-url", help="an Elasticsearch cluster to use (default: start a local node)")
    ap.add_argument("--es-heap", default="1g", help="heap of the local node (default 1g)")
    ap.add_argument("--embedded-only", action="store_true", help="skip Elasticsearch")
    ap.add_argument("--es-only", action="store_true", help="skip the embedded index")
    ap.add_argument("--es-keep", action="store_true",
                    help="keep the Elasticsearch index after the run, and reuse one that has documents (with "
                         "--es-url: build millions of documents once, measure queries when the machine is quiet)")
    ap.add_argument("--facets", action="store_true", help="also time each facet alone (embedded)")
    ap.add_argument("--index", type=Path, help="keep the embedded index in this folder; reused when it has documents")
    ap.add_argument("--slowest", type=int, metavar="N",
                    help="then the N slowest searches (embedded) by wall and by CPU, each with its stages' CPU")
    args = ap.parse_args()

    path = documents(min(args.records, LOC_DOCS), args.cache)
    qs, typed = queries(path, args.queries), prefixes(path, args.queries)
    results: dict[str, dict] = {}
    if not args.es_only:
        results["embedded"] = run_embedded(args, path, qs, typed)
    if not args.embedded_only:
        results["elasticsearch"] = run_elasticsearch(args, path, qs, typed)
    report(args.records, results)


def run_embedded(args, path: Path, qs: list[SearchQuery], typed: list[str]) -> dict:
    """Build (or reuse ``--index``) the tantivy index, and time the queries; with ``--facets``, per facet."""
    from index.embedded import EmbeddedIndex
    embedded = EmbeddedIndex(args.index or Path(tempfile.mkdtemp(prefix="unioncat-bench-search-")) / "index")
    built = ({"docs": embedded.count(), "docs_per_s": float("nan")} if embedded.count()
             else build(embedded, path, args.records))
    result = {**built, "size_mb": embedded.stats()["size_bytes"] / 1e6, **latencies(embedded, qs, typed)}
    if args.facets:
        print("| embedded: facets computed | p50 | p95 | CPU per query |\n|---|---|---|---|")
        for name, t in facet_costs(embedded, qs).items():
            print(f"| {name} | {t['p50_ms']:.1f} ms | {t['p95_ms']:.1f} ms | {t['cpu_ms']:.1f} ms |", flush=True)
        print("| embedded: searches | queries | p50 | p95 |\n|---|---|---|---|")
        for name, t in by_typo_pass(embedded, qs).items():
            print(f"| {name} | {t['queries']} | {t['p50_ms']:.1f} ms | {t['p95_ms']:.1f} ms |", flush=True)
    if args.slowest:
        import search_tail
        search_tail.report(search_tail.profile(embedded, qs), args.slowest)
    embedded.close()
    print("embedded", json.dumps(result), flush=True)
    return result


def _node_jvm(es) -> dict:
    """The version and heap the cluster's nodes report: with ``--es-url`` the node is not ours, so
    ``--es-heap`` says nothing about it."""
    nodes = es.client.nodes.info(metric="jvm").body["nodes"].values()
    heaps = sorted({n["jvm"]["mem"]["heap_max_in_bytes"] for n in nodes})
    return {"version": ", ".join(sorted({n["version"] for n in nodes})),
            "heap": ", ".join(f"{h / 2**30:.1f} GiB" for h in heaps)}


def run_elasticsearch(args, path: Path, qs: list[SearchQuery], typed: list[str]) -> dict:
    """The same build and queries on Elasticsearch (a local node unless ``--es-url``)."""
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
        kept = args.es_keep and es.count()
        built = {"docs": kept, "docs_per_s": float("nan")} if kept else build(es, path, args.records)
        result = {**built, **latencies(es, qs, typed), **_node_jvm(es)}
        print("elasticsearch", json.dumps(result), flush=True)
        return result
    finally:
        if not args.es_keep:
            es.client.indices.delete(index="bench-search-v*", ignore_unavailable=True, allow_no_indices=True)
        es.close()
        if node is not None:
            node.stop()


def report(records: int, results: dict[str, dict]) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{records} documents, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {_load()}, peak RSS of this process {peak:,.0f} MB")
    print("| backend | what | build docs/s | p50 | p95 | p99 | max | CPU per query (this process): mean | "
          "CPU p50 / p95 / p99 | answered |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for what, t in (("search, all facets", r), ("search, page facets", r["page"]), ("suggest", r["suggest"])):
            print(f"| {name} | {what} | {r['docs_per_s']:,.0f} | {t['p50_ms']:.1f} ms | {t['p95_ms']:.1f} ms | "
                  f"{t['p99_ms']:.1f} ms | {t['max_ms']:.1f} ms | {t['cpu_ms']:.1f} ms | {t['cpu_p50_ms']:.1f} / "
                  f"{t['cpu_p95_ms']:.1f} / {t['cpu_p99_ms']:.1f} ms | {t['answered']}/{t['queries']} |")


if __name__ == "__main__":
    main()
