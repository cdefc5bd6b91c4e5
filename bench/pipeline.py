"""Benchmark the whole pipeline on real LoC records split across simulated members.

    python bench/pipeline.py --records 50000

Prints records/s for harvest (OAI-PMH from a loopback ``oaipmh`` provider in
its own process, and file dumps), normalise, dedupe and index; search latency
percentiles; peak RSS; and, in the same process, raw pymarc parsing of the
same member records as the baseline the normaliser is compared with.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymarc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.load import parse_sources  # noqa: E402
from index.backend import SearchQuery  # noqa: E402
from unioncat import pipeline  # noqa: E402
from demo.cnmarc import to_cnmarc  # noqa: E402
from demo.consortium import MEMBERS, TRANSFORMS, holders  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

HOLDINGS = {"nju": "generic949", "seu": "koha952", "njnu": "sierra945", "suda": "alma_ava",
            "xjtlu": "folio952", "jiangnan": "marc852", "njust": "cnmarc905"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_members(n: int, out: Path, cache: Path) -> dict[str, int]:
    """Split N LoC records across the six demo members (each record held by 1–6 of them)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {m.id: open(out / f"{m.id}.{'xml' if m.container == 'oai' else 'mrc'}", "wb") for m in MEMBERS}
    files["seu"].write(b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n')
    counts = {m.id: 0 for m in MEMBERS}
    for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
        for member in holders(i):
            rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
            counts[member] += 1
            if member == "njust":  # the Huiwen member: CNMARC in GBK (a file here; bench/zoom.py times Z39.50)
                files[member].write(to_cnmarc(rec, f"{i:010d}", library="NJUST"))
                continue
            TRANSFORMS[member](rec, i)
            if member == "seu":
                files[member].write(pymarc.record_to_xml(rec, namespace=True) + b"\n")
            else:
                files[member].write(rec.as_marc())
    files["seu"].write(b"</collection>\n")
    for fh in files.values():
        fh.close()
    return counts


def baseline_parse(paths: list[Path]) -> tuple[int, float]:
    """(records, seconds) pymarc needs just to parse the member dumps (no mapping at all)."""
    n = 0
    started = time.perf_counter()
    for path in paths:
        for data in iter_chunks(path):
            pymarc.Record(data=data, to_unicode=True, force_utf8=True, utf8_handling="replace")
            n += 1
    return n, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000, help="LoC base records (≤ 250,000)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="unioncat-bench-"))
    t = time.perf_counter()
    counts = build_members(args.records, work / "dumps", args.cache)
    total_member = sum(counts.values())
    print(f"built {total_member} member records from {args.records} LoC records in {time.perf_counter() - t:.1f}s: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)

    port = free_port()
    provider = subprocess.Popen([sys.executable, "-m", "demo.oai_member", "--port", str(port),
                                 "--records", str(work / "dumps" / "seu.xml"), "--batch-size", "500",
                                 "--set", "books"],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if provider.poll() is not None:
                    raise SystemExit(f"OAI provider died: {provider.stderr.read().decode()}")
                time.sleep(0.2)
        sources = {"consortium": {"name": "Bench"}, "sources": []}
        for m in MEMBERS:
            entry = {"id": m.id, "name": m.id, "region": "R" + str(len(m.id) % 3), "holdings": HOLDINGS[m.id]}
            if m.container == "oai":
                entry |= {"protocol": "oai", "url": f"http://127.0.0.1:{port}/oai", "metadata_prefix": "marcxml",
                          "set": "books", "timeout": 300}
            else:
                entry |= {"protocol": "file", "path": str(work / "dumps" / f"{m.id}.mrc"),
                          "format": "cnmarc" if m.id == "njust" else "marc21"}
            sources["sources"].append(entry)
        settings = load_settings(env={}, data_dir=work / "var", sources_path=work / "sources.yaml",
                                 cache_dir=args.cache)
        cat = pipeline.Catalogue(settings, parse_sources(sources, work / "sources.yaml"))

        results: dict[str, float] = {}
        oai = [s for s in cat.sources.sources if s.protocol == "oai"]
        files = [s for s in cat.sources.sources if s.protocol == "file"]
        t = time.perf_counter()
        reports = pipeline.harvest(cat, oai)
        results["harvest_oai_s"] = time.perf_counter() - t
        results["harvest_oai_rps"] = counts["seu"] / results["harvest_oai_s"]
        t = time.perf_counter()
        reports += pipeline.harvest(cat, files)
        results["harvest_files_s"] = time.perf_counter() - t
        results["harvest_files_rps"] = (total_member - counts["seu"]) / results["harvest_files_s"]
        assert all(r.status == "ok" for r in reports), [r.error for r in reports if r.status != "ok"]

        t = time.perf_counter()
        n = pipeline.normalise_stage(cat)
        results["normalise_s"] = time.perf_counter() - t
        results["normalise_rps"] = n.normalised / results["normalise_s"]
        parsed, results["baseline_parse_s"] = baseline_parse(sorted((work / "dumps").glob("*.mrc")))
        results["baseline_parse_rps"] = parsed / results["baseline_parse_s"]
        results["normalise_vs_parse"] = (results["normalise_s"] / total_member) / (
            results["baseline_parse_s"] / parsed)
        t = time.perf_counter()
        d = pipeline.dedupe_stage(cat)
        results["dedupe_s"] = time.perf_counter() - t
        results["dedupe_rps"] = n.normalised / results["dedupe_s"]
        t = time.perf_counter()
        ix = pipeline.index_stage(cat)
        results["index_s"] = time.perf_counter() - t
        results["index_cps"] = ix.indexed / results["index_s"]
        build_s = results["normalise_s"] + results["dedupe_s"] + results["index_s"]
        results["build_rps"] = n.normalised / build_s
        results["clusters"] = ix.total
        results["shared_clusters"] = cat.clusters.count_shared()

        rng = random.Random(7)
        sample = [c.record for _, c in zip(range(2000), cat.clusters.iter_live())]
        queries: list[SearchQuery] = []
        for _ in range(args.queries):
            r = rng.choice(sample)
            kind = rng.random()
            if kind < 0.5 and r.title:
                words = r.title.split()
                queries.append(SearchQuery(text=" ".join(words[: rng.randint(1, min(3, len(words)))])))
            elif kind < 0.7 and r.isbns:
                queries.append(SearchQuery(text=r.isbns[0]))
            elif kind < 0.85:
                queries.append(SearchQuery(text=rng.choice(["history", "law", "china", "science", "art"]),
                                           filters={"region": ["R1"]}))
            else:
                queries.append(SearchQuery(text=""))  # browse everything, facets over the whole index
        lat = []
        for q in queries:
            t = time.perf_counter()
            cat.index.search(q)
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        results["search_p50_ms"] = statistics.median(lat)
        results["search_p95_ms"] = lat[int(len(lat) * 0.95) - 1]
        results["search_max_ms"] = lat[-1]
        results["peak_rss_mb"] = peak_rss_mb()
        cat.close()
    finally:
        provider.terminate()
        provider.wait(timeout=10)

    print(f"\nunioncat pipeline benchmark — {args.records} LoC records → {total_member} member records "
          f"({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()})")
    print(f"  harvest OAI-PMH  {results['harvest_oai_rps']:>9.0f} rec/s  ({counts['seu']} records, "
          f"{results['harvest_oai_s']:.1f}s)")
    print(f"  harvest files    {results['harvest_files_rps']:>9.0f} rec/s")
    print(f"  baseline parse   {results['baseline_parse_rps']:>9.0f} rec/s  (pymarc, same process)")
    print(f"  normalise        {results['normalise_rps']:>9.0f} rec/s  ({results['normalise_vs_parse']:.2f}× "
          "raw parse time per record)")
    print(f"  dedupe           {results['dedupe_rps']:>9.0f} rec/s  ({results['clusters']} clusters, "
          f"{results['shared_clusters']} held by ≥ 2 libraries)")
    print(f"  index            {results['index_cps']:>9.0f} clusters/s")
    print(f"  build (all three){results['build_rps']:>9.0f} rec/s")
    print(f"  search           p50 {results['search_p50_ms']:.1f} ms, p95 {results['search_p95_ms']:.1f} ms, "
          f"max {results['search_max_ms']:.1f} ms over {len(lat)} queries")
    print(f"  peak RSS         {results['peak_rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
