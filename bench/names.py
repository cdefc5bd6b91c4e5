"""Benchmark search with see-from expansion: a name found by its other forms, on the embedded index.

    python bench/names.py --records 250000

N real LoC records (``demo.loc``) are normalised, held by the demo members ``demo.consortium.holders``
picks, made into search documents (``index.documents.to_document``) and given their names' other forms
exactly as the index stage does (``index.names.add_variants``): the record's own forms (880 names,
pinyin ↔ Wade-Giles) and an authority file's see-froms.  The LoC sample carries no authority records, so
the authority side is made here: one personal heading in ten gets two see-froms, the name in direct order
("Xun Lu" for "Lu, Xun") and the surname alone with the forename's initial ("Lu, X."), as NACO 400s
often read.  Then the embedded (tantivy) index is built and timed on three kinds of reader query, every
one computing all facets: a see-from form, a Wade-Giles (or pinyin) form the record does not carry, and
the heading as catalogued (the baseline: the same search without any expansion involved).

The documents are made once per N and cached as JSON lines under ``$UNIONCAT_CACHE`` (default
``.cache``), then streamed into the index 5,000 at a time, so memory stays flat at 250k and a rerun
(say on a quiet machine) only builds the index and searches.

Prints one JSON document: documents, forms added, build time, p50/p95/p99/max wall and p50/p95 CPU
milliseconds per query and kind, peak RSS, CPU-seconds beside wall time, load average.  Results go into
BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import multiprocessing
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

from dedupe.model import Cluster  # noqa: E402
from demo.consortium import holders  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from harvester.raw import RawRecord  # noqa: E402
from index.backend import SearchQuery  # noqa: E402
from index.documents import to_document  # noqa: E402
from index.names import add_variants  # noqa: E402
from normaliser import normalise  # noqa: E402
from normaliser.authority import heading_key  # noqa: E402
from normaliser.errors import RecordError  # noqa: E402
from normaliser.model import Holding, Record  # noqa: E402
from normaliser.romanise import name_forms  # noqa: E402

BATCH = 5000


def _search_backends():
    """bench/search_backends.py (its members and their names), loaded by path like bench/holdings.py does."""
    path = Path(__file__).with_name("search_backends.py")
    spec = importlib.util.spec_from_file_location("bench_search_backends", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LIBRARIES = _search_backends().LIBRARIES


def see_froms(name: str) -> list[str]:
    """The made-up authority record's 400s of a personal heading "Surname, Forename, dates"."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) < 2 or not parts[0] or not parts[1] or not parts[1][0].isalpha():
        return []
    return [f"{parts[1]} {parts[0]}", f"{parts[0]}, {parts[1][0]}."]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _document(item: tuple[int, bytes]) -> tuple[str, dict[str, list[str]], int] | None:
    """One LoC record as a document line with its names' forms added, its query seeds, forms added."""
    i, chunk = item
    try:
        rec = normalise(RawRecord(source="loc", local_id=str(i), payload=chunk))
    except RecordError:
        return None
    members = holders(i)
    rec = replace(rec, holdings=[Holding(source=m, local_id=f"{m}-{i}") for m in members])
    doc = to_document(Cluster(id=f"c{i:07d}", record=rec, members=[(m, f"{m}-{i}") for m in members]), LIBRARIES)
    seeds: dict[str, list[str]] = {"see_from": [], "wade_giles": [], "heading": []}
    added = len(add_variants(doc, rec, _authority(rec, i, seeds)))
    return json.dumps(doc, ensure_ascii=False), seeds, added


def documents(n: int, cache: Path) -> tuple[Path, dict]:
    """JSON lines of the documents with their names' forms added, cached under ``cache`` (made once per N:
    delete the file to make them again after changing the document code), and a summary beside them: the
    query seeds per kind and how many forms were added.  Made by one process per core, BATCH records at a
    time, and written as they are made: memory stays flat."""
    path = cache / f"bench-names-docs-{n}.jsonl"
    meta = cache / f"bench-names-docs-{n}.seeds.json"
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    seeds: dict[str, list[str]] = {"see_from": [], "wade_giles": [], "heading": []}
    added = made = 0
    partial = path.with_suffix(".partial")
    started = time.perf_counter()
    chunks = enumerate(iter_chunks(loc_file(cache), limit=n))
    with open(partial, "w", encoding="utf-8") as out, multiprocessing.Pool(os.cpu_count()) as pool:
        while batch := list(itertools.islice(chunks, BATCH)):
            for line, found, forms in filter(None, pool.map(_document, batch, chunksize=100)):
                out.write(line + "\n")
                for kind, texts in found.items():
                    seeds[kind].extend(texts)
                added += forms
                made += 1
            print(f"  {made} documents ({made / (time.perf_counter() - started):.0f}/s)", file=sys.stderr, flush=True)
    meta.write_text(json.dumps({"documents": made, "forms_added": added, "seeds": seeds}, ensure_ascii=False))
    partial.rename(path)
    return path, json.loads(meta.read_text())


def read_batches(path: Path, size: int = BATCH):
    """The cached documents, ``size`` at a time."""
    batch: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            batch.append(json.loads(line))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _authority(rec: Record, i: int, seeds: dict[str, list[str]]) -> dict[str, list[str]]:
    """The see-froms the authority store would give this record's headings (one person in ten has some)."""
    variants: dict[str, list[str]] = {}
    for c in rec.contributors:
        if c.kind != "person" or not c.name:
            continue
        seeds["heading"].append(c.name)
        forms = name_forms(c.name)
        if forms:
            seeds["wade_giles"].append(forms[0])
        if i % 10 == 0 and see_froms(c.name):
            variants[heading_key(c.name)] = [c.name, *see_froms(c.name)]
            seeds["see_from"].append(see_froms(c.name)[0])
    return variants


def latencies(index, texts: list[str]) -> dict:
    """Wall and CPU milliseconds per query (CPU: this process, tantivy's threads included)."""
    walls, cpus, hits = [], [], 0
    for text in texts:
        started, cpu = time.perf_counter(), time.process_time()
        res = index.search(SearchQuery(text=text, limit=20))
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        hits += res.total > 0

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))], 1)
    return {"queries": len(texts), "with_hits": hits, "p50_ms": pct(walls, 50), "p95_ms": pct(walls, 95),
            "p99_ms": pct(walls, 99), "max_ms": round(max(walls), 1), "mean_ms": round(statistics.fmean(walls), 1),
            "cpu_p50_ms": pct(cpus, 50), "cpu_p95_ms": pct(cpus, 95), "cpu_mean_ms": round(statistics.fmean(cpus), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="LoC records (default 50,000)")
    parser.add_argument("--queries", type=int, default=300, help="queries per kind (default 300)")
    args = parser.parse_args()
    from index.embedded import EmbeddedIndex

    started, cpu = time.perf_counter(), cpu_seconds()
    path, made = documents(args.records, Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    documents_s, documents_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    seeds = made["seeds"]
    rng = random.Random(17)
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-names-") as tmp:
        index = EmbeddedIndex(Path(tmp) / "index")
        t, tc = time.perf_counter(), cpu_seconds()
        index.clear()
        for batch in read_batches(path):
            index.add(batch)
        index.commit()
        built, built_cpu = time.perf_counter() - t, cpu_seconds() - tc
        load = os.getloadavg()
        for text in rng.sample(seeds["heading"], min(30, len(seeds["heading"]))):  # warm-up
            index.search(SearchQuery(text=text))
        kinds = {kind: latencies(index, rng.sample(texts, min(args.queries, len(texts))))
                 for kind, texts in seeds.items() if texts}
        index.close()
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                      f"{os.cpu_count()} cores",
        "loc_records": args.records, "documents": made["documents"], "documents_s": round(documents_s, 1),
        "documents_cpu_s": round(documents_cpu, 1), "forms_added": made["forms_added"],
        "index_build_s": round(built, 1), "index_build_cpu_s": round(built_cpu, 1), "search": kinds,
        "load_average_1_5_15": [round(x, 2) for x in load], "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(cpu_seconds() - cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, indent=2))


if __name__ == "__main__":
    main()
