"""Where a full dedupe's CPU goes: by phase, and scoring by block kind (``isbn:``, ``title:``, ``author:`` …).

    python bench/dedupe_kinds.py --store /path/to/unioncat.db [--profile OUT.prof]

A full dedupe of a copy of a normalised store (``bench/dedupe_store.py``'s copy), in this process, with
CPU timers around the pass's phases (staging, scoring, clustering, merging) and, inside scoring, around
each block: per block kind, the blocks, the pairs the block owns (``live``: not scored by an earlier
block), the pairs ``compare`` saw, what it decided (kept as a match, a member's duplicate or a
look-alike veto; dropped), and the CPU of the block's pre-filter and of its ``compare`` calls.  The
timers cost a little; read shares, not absolute figures.  ``--profile`` also writes a cProfile of the pass.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dedupe_store import copied  # noqa: E402

from dedupe import blocking, build, score, verdicts  # noqa: E402
from unioncat import pipeline  # noqa: E402

cpu = time.process_time


class Tally:
    """Counters by block kind, and CPU by phase."""

    def __init__(self) -> None:
        self.kinds: dict[str, Counter] = defaultdict(Counter)
        self.phases: Counter = Counter()
        self.kind = ""

    def phase(self, name: str, fn):
        def timed(*args, **kwargs):
            start = cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                self.phases[name] += cpu() - start
        return timed

    def block(self, fn, windowed: bool):
        def timed(key, members, *args, **kwargs):
            kind = key.split(":", 1)[0] + (" (windows)" if windowed else "")
            before, c = self.kind, self.kinds[kind]
            self.kind = kind
            found = args[3]
            compared, pre = found.compared, found.prefiltered
            start = cpu()
            try:
                return fn(key, members, *args, **kwargs)
            finally:
                c["cpu_s"] += cpu() - start
                c["blocks"] += 1
                c["records"] += len(members)
                c["compared"] += found.compared - compared
                c["prefiltered"] += found.prefiltered - pre
                self.kind = before
        return timed

    def compare(self, fn):
        def timed(a, b):
            start = cpu()
            verdict = fn(a, b)
            c = self.kinds[self.kind]
            c["compare_cpu_s"] += cpu() - start
            kept = verdict.decision in (score.MATCH, score.INTERNAL) or (
                verdict.decision == score.VETO and verdict.features.get("title", 0) >= score.EVIDENCE_TITLE)
            c[f"{verdict.decision}{'' if kept or verdict.decision != score.VETO else ' (dropped)'}"] += 1
            return verdict
        return timed


def instrument(t: Tally) -> None:
    build.stage_changes = t.phase("staging", build.stage_changes)
    build._score = t.phase("scoring", build._score)
    build.recluster = t.phase("clustering", build.recluster)
    build._merge_pending = t.phase("merging", build._merge_pending)
    blocking._score_block = t.block(blocking._score_block, False)
    blocking._score_windows = t.block(blocking._score_windows, True)
    verdicts.compare = t.compare(verdicts.compare)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--profile", type=Path)
    args = ap.parse_args()
    t = Tally()
    instrument(t)
    with tempfile.TemporaryDirectory(prefix="unioncat-bench-kinds-") as tmp:
        n, settings, sources = copied(args.store, Path(tmp))
        cat = pipeline.Catalogue(settings, sources)
        prof = cProfile.Profile() if args.profile else None
        start, wall = cpu(), time.perf_counter()
        if prof:
            prof.enable()
        report = pipeline.dedupe_stage(cat)
        if prof:
            prof.disable()
            prof.dump_stats(args.profile)
        total, wall = cpu() - start, time.perf_counter() - wall
        cat.close()
    kinds = {k: {x: round(v, 2) if isinstance(v, float) else v for x, v in c.items()}
             for k, c in sorted(t.kinds.items(), key=lambda kv: -kv[1]["cpu_s"])}
    print(json.dumps({"member_records": n, "cpu_s": round(total, 1), "wall_s": round(wall, 1),
                      "load_average": os.getloadavg(), "pairs_compared": report.pairs_compared,
                      "pairs_prefiltered": report.pairs_prefiltered, "split": len(report.split_keys),
                      "phases": {k: round(v, 1) for k, v in t.phases.items()}, "kinds": kinds}, indent=1))


if __name__ == "__main__":
    main()
