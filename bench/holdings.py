"""Benchmark attaching holdings records (MFHD): the dedupe stage with and without one MFHD per bib.

    python bench/holdings.py --records 20000

N real LoC records are shared out among the eight members of ``bench/dedupe.py``
(one to four holders each, the demo's export styles).  Two catalogues are
built from the same bibliographic records: one without holdings records, one
where every member bibliographic record is followed in its member's dump by a
MARC 21 holdings record (leader/06 y, 004 = the bib's 001, an 852 and an 866).
Harvest and normalise are not timed; the dedupe stage (features, scoring,
clustering, the 004 → 001 links and the merge that attaches the holdings) is,
and the build rate is given per member bibliographic record, so the two rates
compare the same work plus the attaching.  The issue's bar: attaching adds at
most 15% (the MFHD run's rate ≥ 85% of the plain one).

Prints one JSON document (wall and CPU seconds, rates, peak RSS, load average).
Results go into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import pymarc
from pymarc import Field, Indicators, Subfield

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.load import parse_sources  # noqa: E402
from demo.consortium import TRANSFORMS  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from unioncat import pipeline  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402


def _bench_dedupe():
    """bench/dedupe.py (its members and their share of the records), loaded by path: its name is the package's."""
    spec = importlib.util.spec_from_file_location("bench_dedupe", Path(__file__).with_name("dedupe.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SHARED = _bench_dedupe()
holders, MEMBERS, STYLES = _SHARED.holders, _SHARED.MEMBERS, _SHARED.STYLES


def mfhd_for(bib: pymarc.Record, n: int) -> bytes:
    """A serial-style holdings record for ``bib``: its own 001, 004 = the bib's 001, 852 and 866."""
    marc = pymarc.Record(force_utf8=True)
    marc.leader = marc.leader[:6] + "y" + marc.leader[7:]
    marc.add_field(Field("001", data=f"h{n}"), Field("004", data=bib["001"].data),
                   Field("852", Indicators("0", " "), [Subfield("b", "MAIN"), Subfield("c", "Stacks"),
                                                       Subfield("h", f"QA{n % 900} .B{n % 97}")]),
                   Field("866", Indicators(" ", "0"), [Subfield("a", f"v.1 ({1950 + n % 50})-")]))
    return marc.as_marc()


def write_members(n: int, out: Path, cache: Path, with_mfhd: bool) -> tuple[int, int]:
    """The members' dumps; returns (bibliographic records, holdings records) written."""
    out.mkdir(parents=True, exist_ok=True)
    files = {m: open(out / f"{m}.mrc", "wb") for m in MEMBERS}
    bibs = held = 0
    try:
        for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
            for member in holders(i):
                rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
                TRANSFORMS[STYLES[MEMBERS.index(member) % len(STYLES)]](rec, i)
                files[member].write(rec.as_marc())
                bibs += 1
                if with_mfhd and rec["001"] is not None:
                    files[member].write(mfhd_for(rec, bibs))
                    held += 1
    finally:
        for fh in files.values():
            fh.close()
    return bibs, held


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(n: int, cache: Path, with_mfhd: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-holdings-") as tmp:
        tmp = Path(tmp)
        bibs, held = write_members(n, tmp / "dumps", cache, with_mfhd)
        sources = parse_sources({"consortium": {"name": "bench"}, "sources": [
            {"id": m, "name": m, "region": "bench", "protocol": "file", "path": str(tmp / "dumps" / f"{m}.mrc")}
            for m in MEMBERS]}, tmp / "sources.yaml")
        cat = pipeline.Catalogue(load_settings(env={}, sources_path=tmp / "sources.yaml", data_dir=tmp / "var"),
                                 sources)
        try:
            pipeline.harvest(cat, list(sources.sources), full=True)
            pipeline.normalise_stage(cat)
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), cpu_seconds()
            report = pipeline.dedupe_stage(cat)
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            attached = sum(1 for c in cat.clusters.iter_live() for h in c.record.holdings if h.holdings_id)
        finally:
            cat.close()
    return {"bib_records": bibs, "holdings_records": held, "holdings_attached": attached,
            "clusters": report.total_clusters, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "bibs_per_s": round(bibs / wall), "bibs_per_cpu_s": round(bibs / cpu), "load_average_1m": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="LoC records to share out (default 20,000)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = parser.parse_args()
    plain = run(args.records, args.cache, with_mfhd=False)
    with_mfhd = run(args.records, args.cache, with_mfhd=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                      f"{os.cpu_count()} cores",
        "loc_records": args.records, "plain": plain, "with_mfhd": with_mfhd,
        "cost_of_attaching": {
            "wall": round(plain["bibs_per_s"] / with_mfhd["bibs_per_s"] - 1, 3),
            "cpu": round(plain["bibs_per_cpu_s"] / with_mfhd["bibs_per_cpu_s"] - 1, 3)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
