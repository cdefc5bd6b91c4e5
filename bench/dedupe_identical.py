"""Identical clusters: a real LoC build's dedupe against the old all-pairs loop (``tests/dedupe_reference``).

    python bench/dedupe_identical.py --records 250000 [--work DIR] [--results FILE] [--show N] [--cap N]
    python bench/dedupe_identical.py --work DIR --again     # the same catalogue, deduplicated again by this code

N real LoC records are shared out among the seven demo members (``bench/pipeline.py``'s
``build_members``, every member a file source), harvested, normalised and deduplicated with the
catalogue's settings (``--cap`` sets ``max_block``; oversized blocks are split into title windows as
in a real build).  Then the loop the machinery replaced compares every pair of every block of at
most the cap, and the stored pairs and clusters are compared with its.  Differences from blocks the
loop refused for size are listed for the hand check — each merge's records, ids and titles, the
pairs that made it and the oversized blocks they share; anything else is unexplained, and the exit
code is 1.  One JSON row (times, CPU seconds, load, peak RSS, the comparison's summary) is appended
to ``--results``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from dedupe_reference import Comparison, Region, check  # noqa: E402
from unioncat import pipeline  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_jobs", REPO / "bench" / "jobs.py")
bench_jobs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_jobs)      # its sources_file: the seven demo members as file sources


def cpu_seconds() -> float:
    """CPU of this process, its finished children, and its live children with what they reaped: the
    normaliser's workers are children of a forkserver that outlives the stage."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue        # gone since
            total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")   # utime stime cutime cstime
    return total


def timed(results: dict, name: str, step):
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = step()
    results[f"{name}_s"] = round(time.perf_counter() - wall, 1)
    results[f"{name}_cpu_s"] = round(cpu_seconds() - cpu, 1)
    results[f"{name}_load"] = [round(x, 2) for x in os.getloadavg()]
    print(f"{name}: {results[f'{name}_s']} s wall, {results[f'{name}_cpu_s']} CPU-s, "
          f"load {results[f'{name}_load']}", flush=True)
    return out


def build(args, work: Path, results: dict):
    """The member dumps, then harvest → normalise → dedupe; returns the open catalogue."""
    counts = timed(results, "members", lambda: bench_jobs.bench_pipeline.build_members(
        args.records, work / "dumps", args.cache))
    results["member_records"] = sum(counts.values())
    cat = catalogue(args, work, bench_jobs.sources_file(work), results)
    reports = timed(results, "harvest", lambda: pipeline.harvest(cat, pipeline.select_sources(cat)))
    assert all(r.status == "ok" for r in reports), [r.error for r in reports if r.status != "ok"]
    timed(results, "normalise", lambda: pipeline.normalise_stage(cat))
    return dedupe(cat, results)


def again(args, work: Path, results: dict):
    """A catalogue an earlier run built in ``work``: only a full dedupe pass again (the code under test
    changed; the members, harvest and normalise did not), then the check."""
    results.update(again=True, loc_records=None, member_records=None)
    return dedupe(catalogue(args, work, work / "sources.yaml", results), results, full=True)


def catalogue(args, work: Path, sources: Path, results: dict):
    settings = load_settings(env={}, sources_path=sources, data_dir=work / "var", cache_dir=args.cache,
                             max_block=args.cap)
    results["max_block"], results["block_window"] = settings.max_block, settings.block_window
    return pipeline.Catalogue(settings)


def dedupe(cat, results: dict, full: bool = False):
    report = timed(results, "dedupe", lambda: pipeline.dedupe_stage(cat, full=full))
    results["split_blocks"] = len(report.split_keys)
    results["refused_blocks"] = len(report.refused_keys)
    return cat


def show(cat, comparison: Comparison, regions: list[Region], n: int) -> None:
    """Print up to ``n`` regions for the hand check: each side's clusters (record, year, title) and the
    pairs from oversized blocks that made the difference."""
    for region in regions[:n]:
        records = {r for g in region.built + region.reference for r in g}
        found = cat.records.get_many(records)
        print(f"\n-- {region.kind}: {len(region.reference)} reference cluster(s) → {len(region.built)} built")
        for side, groups in (("reference", region.reference), ("built", region.built)):
            for g in groups:
                print(f"   {side}: " + "; ".join(_line(r, found.get(r)) for r in g))
        for a, b in region.pairs:
            decision, rule, score = comparison.only_built[(a, b)]
            blocks = ", ".join(f"{k} ({comparison.oversized[k]})" for k in comparison.explained_pairs[(a, b)])
            print(f"   pair {a[0]}:{a[1]} ~ {b[0]}:{b[1]}: {decision} {rule} {score} in {blocks}")
    if len(regions) > n:
        print(f"\n… and {len(regions) - n} more")


def report(cat, comparison: Comparison, n: int) -> None:
    """The cluster differences (explained, then unexplained) and the unexplained pairs, ``n`` of each."""
    for title, regions in (("explained", comparison.merged), ("UNEXPLAINED", comparison.unexplained_clusters)):
        if regions:
            print(f"\n== {len(regions)} {title} cluster difference(s)")
            show(cat, comparison, regions, n)
    for pair in comparison.unexplained_pairs[:n]:
        built = comparison.only_built.get(pair) or comparison.differing.get(pair)
        print(f"UNEXPLAINED pair {pair}: built {built}, reference {comparison.only_reference.get(pair)}")


def _line(r, record) -> str:
    if record is None:
        return f"{r[0]}:{r[1]} (gone)"
    return f"{r[0]}:{r[1]} [{record.year or '?'}] {record.title[:70]!r}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=3000, help="LoC base records (≤ 250,000)")
    ap.add_argument("--work", type=Path, help="working folder (default: a new temporary one, kept)")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "dedupe_identical.jsonl")
    ap.add_argument("--show", type=int, default=20, help="cluster differences to list for the hand check")
    ap.add_argument("--again", action="store_true",
                    help="--work holds an earlier run's catalogue: dedupe it again in full and check, nothing else")
    ap.add_argument("--cap", type=int, help="max_block of the build and of the loop (default: the setting's)")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = ap.parse_args()
    if args.again and not args.work:
        ap.error("--again needs the --work folder of an earlier run")
    work = args.work or Path(tempfile.mkdtemp(prefix="unioncat-identical-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loc_records": args.records,
                     "machine": "x86_64, 2 cores shared", "load_start": [round(x, 2) for x in os.getloadavg()]}
    print(f"working in {work}", flush=True)
    cat = (again if args.again else build)(args, work, results)
    try:
        comparison = timed(results, "check", lambda: check(cat))
        results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        results |= comparison.summary()
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(results) + "\n")
        print(json.dumps(comparison.summary(), indent=1), flush=True)
        report(cat, comparison, args.show)
    finally:
        cat.close()
    return 0 if comparison.explained else 1


if __name__ == "__main__":
    sys.exit(main())
