"""Benchmark the downstream interfaces on real LoC records: OAI-PMH served, a sickle harvest, Z39.50 present.

    python bench/provider.py --records 50000

Builds a catalogue from N LoC records shared among three file members (each
record held by one to three of them, with an item field each), then:

* serves it with ``unioncat serve`` (waitress, its own process) and walks
  ``ListRecords`` (``marcxml``, set ``merged``, 500 records a page) with a
  plain HTTP client: records/s served and page latency percentiles;
* harvests the same set with sickle (parsing every record): records/s;
* in this process, renders the same records without HTTP (merged MARC →
  MARCXML, the provider's own work per record) as the same-process baseline;
* publishes the merged records to Zebra (``unioncat publish zebra``): records/s;
* searches Zebra over Z39.50 for every record and presents them all in
  batches of 100 as MARC 21 with our ZOOM client: records/s.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymarc
import requests
import yaml
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from publish.feed import Published, Window  # noqa: E402
from publish.marc import item_marc  # noqa: E402
from publish.writers import marcxml_record  # noqa: E402
from harvester.clients.zoom import Connection  # noqa: E402
from unioncat import pipeline  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from publish.zebra import publish, serve  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

MEMBERS = (("lib-a", "852", "marc852"), ("lib-b", "949", "generic949"), ("lib-c", "949", "generic949"))
OAI_NS = "{http://www.openarchives.org/OAI/2.0/}"


class Results(dict):
    """The measurements; each is printed as it is taken, so a failure late in a long run keeps the rest."""

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        print(f"  {key} = {value:.1f}" if isinstance(value, float) else f"  {key} = {value}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_members(n: int, out: Path, cache: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    files = {m: open(out / f"{m}.mrc", "wb") for m, _, _ in MEMBERS}
    total = 0
    for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
        for k, (member, tag, _) in enumerate(MEMBERS):
            if k and (i * 7 + k) % (k + 2):
                continue  # lib-a holds everything, lib-b a third, lib-c a quarter
            rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
            for f in rec.get_fields("001"):
                f.data = f"{member}-{i}"
            sub = {"852": [("b", "MAIN"), ("c", "Stacks"), ("h", f"QA{i}"), ("p", f"{member}{i}")],
                   "949": [("a", f"QA{i}"), ("i", f"{member}{i}"), ("l", "GEN"), ("m", "SCI")]}[tag]
            rec.add_field(pymarc.Field(tag=tag, indicators=pymarc.Indicators(" ", " "),
                                       subfields=[pymarc.Subfield(c, v) for c, v in sub]))
            files[member].write(rec.as_marc())
            total += 1
    for fh in files.values():
        fh.close()
    return total


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * p) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000, help="LoC base records (≤ 250,000)")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="unioncat-bench-provider-"))
    t = time.perf_counter()
    members = build_members(args.records, work / "dumps", args.cache)
    sources = {"consortium": {"name": "Bench"}, "regions": ["R"],
               "sources": [{"id": m, "name": m, "region": "R", "protocol": "file", "path": f"dumps/{m}.mrc",
                            "format": "marc21", "holdings": preset} for m, _, preset in MEMBERS]}
    (work / "sources.yaml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    settings = load_settings(env={}, data_dir=work / "var", sources_path=work / "sources.yaml", cache_dir=args.cache)
    cat = pipeline.Catalogue(settings)
    pipeline.harvest(cat, pipeline.select_sources(cat))
    pipeline.build(cat)
    clusters = cat.clusters.count()
    print(f"built {clusters} clusters from {members} member records ({args.records} LoC) "
          f"in {time.perf_counter() - t:.0f}s", flush=True)
    results = Results()

    # same-process baseline: what the provider does per record, without HTTP
    published = Published(cat.engine)
    t = time.perf_counter()
    n = 0
    for items in _pages(published, 500):
        for item in items:
            etree.tostring(marcxml_record(item_marc(item)))
            n += 1
    results["render_rps"] = n / (time.perf_counter() - t)

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "UNIONCAT_SOURCES": str(work / "sources.yaml"),
           "UNIONCAT_DATA": str(work / "var")}
    server = subprocess.Popen([sys.executable, "-m", "unioncat", "serve", "--port", str(port), "--threads", "4"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/oai"
    try:
        _wait(port)
        # the served app pages at 100 (its default OAI_PAGE_SIZE)
        session = requests.Session()
        params = {"verb": "ListRecords", "metadataPrefix": "marcxml", "set": "merged"}
        pages, count = [], 0
        t = time.perf_counter()
        while True:
            p = time.perf_counter()
            body = session.get(base, params=params, timeout=120).content
            pages.append((time.perf_counter() - p) * 1000)
            count += body.count(b"<record>")  # OAI records (MARC records carry an xmlns)
            token = re.search(rb"<resumptionToken[^>]*>([^<]+)</resumptionToken>", body)
            if not token:
                break
            params = {"verb": "ListRecords", "resumptionToken": token.group(1).decode()}
        results["oai_served_s"] = time.perf_counter() - t
        results["oai_records"] = count
        results["oai_served_rps"] = count / results["oai_served_s"]
        results["oai_page_p50_ms"] = statistics.median(pages)
        results["oai_page_p95_ms"] = percentile(pages, 0.95)
        results["oai_pages"] = len(pages)

        from sickle import Sickle
        t = time.perf_counter()
        harvested = 0
        for record in Sickle(base, timeout=120).ListRecords(metadataPrefix="marcxml", set="merged"):
            record.xml.find(".//{http://www.loc.gov/MARC21/slim}controlfield")
            harvested += 1
        results["sickle_s"] = time.perf_counter() - t
        results["sickle_records"] = harvested
        results["sickle_rps"] = harvested / results["sickle_s"]
    finally:
        server.terminate()
        server.wait(timeout=30)

    t = time.perf_counter()
    report = publish(cat, work / "zebra")
    results["zebra_publish_s"] = time.perf_counter() - t
    results["zebra_offered"] = report.updated
    results["zebra_publish_rps"] = (report.updated + report.below_bar) / results["zebra_publish_s"]
    zebra = serve(work / "zebra", port=0)
    try:
        with Connection(zebra.url, syntax="usmarc", batch_size=100) as conn:
            rs = conn.search("@attr 1=1012 @attr 2=4 @attr 4=109 19000101")
            t = time.perf_counter()
            got = 0
            for rec in rs:
                pymarc.Record(data=rec.data, to_unicode=True, force_utf8=True)
                got += 1
            results["z3950_present_s"] = time.perf_counter() - t
            results["z3950_records"] = got
            results["z3950_present_rps"] = got / results["z3950_present_s"]
        sru = requests.get(zebra.sru_url, params={"version": "1.2", "operation": "searchRetrieve",
                                                  "query": 'dc.title="history"', "recordSchema": "marcxml",
                                                  "maximumRecords": "5"}, timeout=60)
        results["sru_hits_history"] = int(re.search(rb"numberOfRecords>(\d+)<", sru.content).group(1))
    finally:
        zebra.stop()
    cat.close()
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\nunioncat provider benchmark — {args.records} LoC records → {members} member records → {clusters} "
          f"clusters ({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()})")
    print(f"  OAI-PMH ListRecords served  {results['oai_served_rps']:>8.0f} rec/s  ({results['oai_records']} records, "
          f"{results['oai_pages']} pages; page p50 {results['oai_page_p50_ms']:.0f} ms, "
          f"p95 {results['oai_page_p95_ms']:.0f} ms)")
    print(f"  baseline: same records rendered in-process {results['render_rps']:>8.0f} rec/s "
          f"(served = {results['oai_served_rps'] / results['render_rps']:.2f}× of it)")
    print(f"  sickle full-set harvest     {results['sickle_rps']:>8.0f} rec/s  ({results['sickle_records']} records "
          f"in {results['sickle_s']:.0f}s)")
    print(f"  publish zebra (full)        {results['zebra_publish_rps']:>8.0f} rec/s  "
          f"({results['zebra_offered']} offered)")
    print(f"  Z39.50 present (ZOOM, 100/present) {results['z3950_present_rps']:>8.0f} rec/s  "
          f"({results['z3950_records']} records)")
    print(f"  SRU dc.title=history hits   {results['sru_hits_history']}")
    print(f"  peak RSS (bench process)    {results['peak_rss_mb']:.0f} MB")


def _pages(published: Published, size: int):
    after = 0
    while True:
        items = published.page(Window(kind="merged"), after, size)
        if not items:
            return
        yield [i for i in items if i.cluster is not None]
        after = items[-1].seq


def _wait(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web app did not start")


if __name__ == "__main__":
    main()
