"""One stage of ``bench/scale.py``, run in its own process so its CPU and peak RSS are its own.

    python bench/scale_stage.py WORK generate N MEMBERS SEED | startup | reference N
                                     | harvest | normalise | dedupe | index | revise MEMBER

Prints one JSON line (the stage's report) last; the pipeline's progress messages go to stderr, timed.
The stages call the same ``unioncat.pipeline`` functions as ``unioncat harvest`` and ``unioncat build``,
on the catalogue under ``WORK/var``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Where the LoC file and the other fetched files are (``UNIONCAT_CACHE``, as for the tests).
CACHE = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
sys.path.insert(0, str(REPO))

from consortium.load import load_sources  # noqa: E402
from demo import synthetic  # noqa: E402
from demo.loc import iter_chunks, loc_file  # noqa: E402
from unioncat import compiled, pipeline  # noqa: E402
from unioncat.settings import load_settings  # noqa: E402


def catalogue(work: Path) -> pipeline.Catalogue:
    """The run's catalogue with the default settings, but for the dedupe's workers (``scale.py --dedupe-workers``)."""
    env = {k: v for k, v in os.environ.items() if k == "UNIONCAT_DEDUPE_WORKERS"}
    settings = load_settings(env=env, data_dir=work / "var", sources_path=work / "sources.yaml", cache_dir=CACHE)
    return pipeline.Catalogue(settings, load_sources(work / "sources.yaml"))


def plain(report: object) -> object:
    """A report as JSON-able data, whatever fields the (changing) report classes have."""
    if dataclasses.is_dataclass(report):
        return {k: plain(v) for k, v in dataclasses.asdict(report).items()}
    if isinstance(report, list):
        return [plain(r) for r in report]
    return report


#: How many times :func:`reference` parses its records (its figure is the fastest pass).
REFERENCE_PASSES = 5


def reference(records: int) -> dict:
    """How fast this machine runs the kind of Python the build runs: pymarc parsing real MARC, CPU µs a record.

    The issue's rate is in CPU-seconds, but a CPU-second is not one size: the same 1M build cost 2.4× more of
    them on one cloud VM than on another.  pymarc's parser (pure Python: bytes sliced, decoded, lists and
    objects built — what every stage does per record) is the yardstick the issue itself measured beside the
    build ("normalise costs 2.0× pymarc's parse"), so a build's CPU per member record divided by this figure
    compares across machines.  The fastest of five passes over the first ``records`` LoC records (``scale.py``
    asks 20,000), already in memory: on a shared VM one pass can take 1.6× another a minute later with
    nothing else running, so the fastest is the machine's own speed and the spread is reported beside it."""
    from importlib.metadata import version

    import pymarc
    chunks = list(iter_chunks(loc_file(CACHE), records))
    passes = []
    for _ in range(REFERENCE_PASSES):
        started = time.process_time()
        for chunk in chunks:
            pymarc.Record(data=chunk, to_unicode=True, force_utf8=True)
        passes.append((time.process_time() - started) / len(chunks) * 1e6)
    return {"records": len(chunks), "pymarc": version("pymarc"), "passes_us": [round(p, 1) for p in passes],
            "us_per_record": round(min(passes), 1)}


def progress(stage: str) -> pipeline.Progress:
    """The pipeline's progress messages on stderr, timed: a 5M stage runs for hours, its JSON only at the end."""
    return lambda message: print(f"{time.strftime('%H:%M:%S')} {stage}: {message}", file=sys.stderr, flush=True)


def harvest(cat: pipeline.Catalogue) -> dict:
    reports = pipeline.harvest(cat, cat.sources.sources)   # quiet: three lines a member and page
    failed = [f"{r.source}: {r.error}" for r in reports if not r.ok]
    total = {k: sum(getattr(r.counts, k) for r in reports) for k in ("added", "updated", "deleted", "unchanged",
                                                                   "quarantined")}
    return {**total, "failed": failed}


def run(work: Path, stage: str, args: list[str]) -> dict:
    if stage == "generate":
        n, members, seed = (int(a) for a in args)
        mems = synthetic.members(members)
        g = synthetic.generate(loc_file(CACHE), work / "dumps", n, members, seed)
        import yaml
        (work / "sources.yaml").write_text(yaml.safe_dump(synthetic.sources_yaml(mems, work / "dumps", g.per_member or {}),
                                                          allow_unicode=True))
        return plain(g)
    if stage == "revise":
        return {"changed": synthetic.revise(work / "dumps" / f"{args[0]}.mrc")}
    if stage == "reference":
        return reference(int(args[0]))
    cat = catalogue(work)
    try:
        if stage == "startup":  # what every stage process pays before it works: imports, opening the stores
            return {}
        if stage == "harvest":
            return harvest(cat)
        if stage == "normalise":
            return plain(pipeline.normalise_stage(cat, progress("normalise")))
        if stage == "dedupe":
            return plain(pipeline.dedupe_stage(cat, progress("dedupe")))
        if stage == "index":
            out = plain(pipeline.index_stage(cat, progress("index")))
            out["shared_clusters"] = cat.clusters.count_shared()
            return out
        raise SystemExit(f"unknown stage {stage!r}")
    finally:
        cat.close()


if __name__ == "__main__":
    result = run(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
    if isinstance(result, dict):   # what ran compiled (unioncat/compiled.py): a figure is only comparable with its like
        result["compiled_modules"] = len(compiled.compiled_modules())
    print(json.dumps(result, default=str), flush=True)
