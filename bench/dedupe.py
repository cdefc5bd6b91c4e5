"""Benchmark the dedupe stage: a full pass over LoC records held by 8 members, then a 1% change.

    python bench/dedupe.py --records 250000

N real LoC records are shared out among eight simulated members with overlap
(each record held by one to four of them, each member's export style from the
demo: own 001, ISBN forms, capitals, missing ISBNs), harvested from file dumps
and normalised (not timed), then deduplicated from scratch (timed: member
records/s, pairs compared, peak RSS).  Then 1% of the member records are
changed (a corrected physical description, as a member's re-export would) and the
dedupe runs again (timed: records re-evaluated, pairs compared, seconds) —
the incremental pass should cost about 1% of the full one.

Prints one JSON document.  Results go into BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import pymarc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from consortium.load import parse_sources  # noqa: E402
from unioncat import pipeline  # noqa: E402
from demo.consortium import TRANSFORMS  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402
from dedupe_child import dedupe_in_child  # noqa: E402

MEMBERS = [f"m{n}" for n in range(1, 9)]
STYLES = list(TRANSFORMS)          # the six demo export styles, reused round-robin by the eight members


def holders(i: int) -> list[str]:
    """One to four members per record (40/30/20/10%), deterministic."""
    rng = random.Random(i)
    k = rng.choices((1, 2, 3, 4), weights=(40, 30, 20, 10))[0]
    return rng.sample(MEMBERS, k)


def write_members(n: int, out: Path, cache: Path, changed: set[tuple[str, int]] = frozenset()) -> int:
    """The members' dumps; records in ``changed`` get a corrected 300.  Returns member records written."""
    out.mkdir(parents=True, exist_ok=True)
    files = {m: open(out / f"{m}.mrc", "wb") for m in MEMBERS}
    written = 0
    try:
        for i, chunk in enumerate(iter_chunks(loc_file(cache), limit=n)):
            for member in holders(i):
                rec = pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
                TRANSFORMS[STYLES[MEMBERS.index(member) % len(STYLES)]](rec, i)
                if (member, i) in changed:      # a re-export with a corrected physical description
                    for f in rec.get_fields("300"):
                        f.add_subfield("e", "1 folded map")
                files[member].write(rec.as_marc())
                written += 1
    finally:
        for fh in files.values():
            fh.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=250_000, help="LoC records to share out (default 250,000)")
    parser.add_argument("--change", type=float, default=0.01, help="share of member records changed (default 0.01)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-dedupe-") as tmp:
        tmp = Path(tmp)
        dumps = tmp / "dumps"
        member_records = write_members(args.records, dumps, args.cache)
        sources = parse_sources({"consortium": {"name": "bench"}, "sources": [
            {"id": m, "name": m, "region": "bench", "protocol": "file", "path": str(dumps / f"{m}.mrc")}
            for m in MEMBERS]}, tmp / "sources.yaml")
        settings = load_settings(env={}, sources_path=tmp / "sources.yaml", data_dir=tmp / "var")
        cat = pipeline.Catalogue(settings, sources)
        try:
            pipeline.harvest(cat, list(sources.sources), full=True)
            pipeline.normalise_stage(cat)
            cat.close()
            full, full_s, full_cpu, full_rss = dedupe_in_child(settings, sources)
            cat = pipeline.Catalogue(settings, sources)
            # change 1% of the member records
            rng = random.Random(1)
            pairs = [(m, i) for i in range(args.records) for m in holders(i)]
            changed = set(rng.sample(pairs, max(1, int(len(pairs) * args.change))))
            write_members(args.records, dumps, args.cache, changed)
            pipeline.harvest(cat, list(sources.sources), full=True)
            pipeline.normalise_stage(cat)
            cat.close()
            again, again_s, again_cpu, again_rss = dedupe_in_child(settings, sources)
            cat = pipeline.Catalogue(settings, sources)
        finally:
            cat.close()
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
                                                      f"{os.cpu_count()} cores",
        "loc_records": args.records, "member_records": member_records, "members": len(MEMBERS),
        "full": {"seconds": round(full_s, 1), "cpu_seconds": round(full_cpu, 1),
                 "records_per_s": round(member_records / full_s),
                 "records_per_cpu_s": round(member_records / full_cpu),
                 "peak_rss_mb": round(full_rss), **_counts(full)},
        "incremental": {"records_changed": again["records_changed"], "seconds": round(again_s, 1),
                        "cpu_seconds": round(again_cpu, 1), "peak_rss_mb": round(again_rss), **_counts(again),
                        "records_reclustered": again["records_reclustered"],
                        "clusters_written": again["clusters_written"]},
        "ratios": {"pairs_compared": round(again["pairs_compared"] / max(1, full["pairs_compared"]), 4),
                   "seconds": round(again_s / full_s, 4), "cpu_seconds": round(again_cpu / full_cpu, 4)},
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


def _counts(report: dict) -> dict:
    return {"pairs_compared": report["pairs_compared"], "records_evaluated": report["records_evaluated"],
            "clusters": report["total_clusters"], "refused_blocks": len(report["refused_keys"]),
            "rejected_pairs": report["rejected_pairs"]}


if __name__ == "__main__":
    main()
