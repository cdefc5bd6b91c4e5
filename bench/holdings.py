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

Both catalogues are harvested and normalised once; then ``--rounds`` rounds each run the dedupe stage on
a fresh copy of each database, plain and MFHD interleaved in one process (which goes first alternates), and
the cost of attaching is the median of the rounds' CPU-second ratios: CPU time of this process (SQLite
runs in it) can be judged on a shared machine, where wall time is mostly waiting.

Prints a line per round on stderr and one JSON document (CPU and wall seconds per round, medians, rates,
peak RSS, load average).
Results go into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.util
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
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


def _catalogue(root: Path) -> pipeline.Catalogue:
    sources = parse_sources({"consortium": {"name": "bench"}, "sources": [
        {"id": m, "name": m, "region": "bench", "protocol": "file", "path": str(root / "dumps" / f"{m}.mrc")}
        for m in MEMBERS]}, root / "sources.yaml")
    return pipeline.Catalogue(load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var"),
                              sources)


def prepare(n: int, cache: Path, root: Path, with_mfhd: bool) -> dict:
    """Harvest and normalise one catalogue (not timed) and keep its database as the rounds' starting point
    (reused when ``root`` holds one already: ``--workdir``)."""
    sizes = root / "sizes.json"
    if sizes.exists() and (root / "normalised.db").exists():
        return json.loads(sizes.read_text())
    bibs, held = write_members(n, root / "dumps", cache, with_mfhd)
    cat = _catalogue(root)
    try:
        pipeline.harvest(cat, list(cat.sources.sources), full=True)
        pipeline.normalise_stage(cat)
    finally:
        cat.close()
    # SQLite's backup: a consistent copy even with pages still in the write-ahead log
    with closing(sqlite3.connect(root / "var" / "unioncat.db")) as src, \
            closing(sqlite3.connect(root / "normalised.db")) as dst:
        src.backup(dst)
    sizes.write_text(json.dumps({"bib_records": bibs, "holdings_records": held}))
    return json.loads(sizes.read_text())


def dedupe_once(root: Path, profile: Path | None = None) -> dict:
    """The dedupe stage on a fresh copy of the normalised database: CPU and wall seconds."""
    for leftover in (root / "var").glob("unioncat.db*"):
        leftover.unlink()
    shutil.copyfile(root / "normalised.db", root / "var" / "unioncat.db")
    cat = _catalogue(root)
    try:
        load = os.getloadavg()[0]
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), cpu_seconds()
        if profiler:
            profiler.enable()
        report = pipeline.dedupe_stage(cat)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        if profiler:
            profiler.dump_stats(profile)
        attached = sum(1 for c in cat.clusters.iter_live() for h in c.record.holdings if h.holdings_id)
    finally:
        cat.close()
    return {"clusters": report.total_clusters, "holdings_attached": attached, "seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2), "load_average_1m": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="LoC records to share out (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved plain/MFHD rounds (default 3)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the last MFHD round's dedupe here")
    parser.add_argument("--workdir", type=Path, help="keep the normalised catalogues here and reuse them "
                                                     "on the next run with the same --records")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-holdings-") as tmp:
        work = args.workdir / str(args.records) if args.workdir else Path(tmp)
        roots = {"plain": work / "plain", "with_mfhd": work / "mfhd"}
        sizes = {mode: prepare(args.records, args.cache, root, mode == "with_mfhd") for mode, root in roots.items()}
        rounds = []
        for r in range(args.rounds):
            # alternate which build goes first, so a load change between them does not favour one
            order = ["plain", "with_mfhd"] if r % 2 == 0 else ["with_mfhd", "plain"]
            last = r == args.rounds - 1
            runs = {mode: dedupe_once(roots[mode], args.profile if last and mode == "with_mfhd" else None)
                    for mode in order}
            runs["cost_cpu"] = round(runs["with_mfhd"]["cpu_seconds"] / runs["plain"]["cpu_seconds"] - 1, 3)
            runs["cost_wall"] = round(runs["with_mfhd"]["seconds"] / runs["plain"]["seconds"] - 1, 3)
            rounds.append(runs)
            print(json.dumps({"round": r + 1, **runs}), file=sys.stderr)
    # the bib count is the same in both builds: the ratio of CPU seconds is the ratio of rates
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                      f"{os.cpu_count()} cores",
        "loc_records": args.records, "sizes": sizes, "rounds": rounds,
        "median_cpu_seconds": {mode: statistics.median(r[mode]["cpu_seconds"] for r in rounds)
                               for mode in roots},
        "cost_of_attaching": {"cpu_median": statistics.median(r["cost_cpu"] for r in rounds),
                              "wall_median": statistics.median(r["cost_wall"] for r in rounds)},
        "bibs_per_cpu_s": {mode: round(sizes[mode]["bib_records"] / statistics.median(
            r[mode]["cpu_seconds"] for r in rounds)) for mode in roots},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
