"""Where one stage of a scale build spends its CPU: SQLite, orjson, tantivy, other C — and our Python.

    python bench/scale_profile.py WORK STAGE [--rate 50] [--raw FILE] [--top 15]

Runs ``bench/scale_stage.py WORK STAGE`` (normalise, dedupe or index of a ``bench/scale.py --keep`` folder
whose STAGE has work left: copy the folder after the stage before it) under py-spy, which samples the stage
process and the normaliser's workers, and sorts every sample by the function it was in (its leaf frame):

* **SQLite**: the driver's ``execute``, ``executemany``, ``fetch…`` and ``commit`` — the C library stepping
  through its B-trees and reading and writing pages;
* **orjson**: ``storage/jsoncodec.py``'s calls;
* **tantivy calls**: filling a tantivy document and handing it to the writer (``index/embedded_doc.py``'s
  ``to_tantivy``, ``EmbeddedIndex.add``); tantivy's own indexing and merge threads hold no Python frame, so
  py-spy never samples them: they are the stage's CPU less the sampled seconds (**unsampled threads**);
* **IPC**: ``multiprocessing``'s pickling, pipes and waits (the normaliser's batches to and from its workers);
* **other C**: rapidfuzz and lxml;
* **Python**: everything else — our modules, SQLAlchemy's Python, and the builtins they call.

The Python share is what a compiled per-record core would replace (BENCHMARKS.md, "Where a 1M build's CPU
goes"); the rest is a floor such a core keeps.  A sample is 1/rate of a second of a thread that was running
or runnable, so under load the sampled seconds exceed the CPU; the shares still hold.  The stage's CPU is the
sum over its process tree from /proc (``scale.PeakSampler``), py-spy's own left out.  py-spy is the one beside this
interpreter (the ``test`` extra installs it) or else on PATH.  Prints the table, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from scale import REPO, sampled

#: (category, what its leaf frames contain), in the order they are tried; the rest is "Python".
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("SQLite", ("DefaultDialect.do_execute ", "DefaultDialect.do_executemany ", "DefaultDialect.do_commit ",
                "CursorFetchStrategy.fetch", "BufferedRowCursorFetchStrategy.fetch")),
    ("orjson", ("(storage/jsoncodec.py",)),
    ("tantivy calls", ("to_tantivy (index/embedded_doc.py", "EmbeddedIndex.add (index/embedded.py")),
    ("IPC", ("(multiprocessing/", "(selectors.py", "(concurrent/futures/")),
    ("other C", ("(rapidfuzz/", "parse_xml (normaliser/marcxml.py")),
]
PYTHON, UNSAMPLED = "Python", "unsampled threads"
_LINE = re.compile(r"^(.*) (\d+)$")


def category(leaf: str) -> str:
    """The category of a sample from its leaf frame, as py-spy's raw format writes it (``name (file:line)``)."""
    return next((name for name, marks in CATEGORIES if any(m in leaf for m in marks)), PYTHON)


def classify(raw: Path) -> tuple[Counter, Counter]:
    """Samples per category, and per function (its own time: the leaf frame without its line number)."""
    by_category: Counter = Counter()
    by_function: Counter = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        leaf, samples = match.group(1).rsplit(";", 1)[-1], int(match.group(2))
        by_category[category(leaf)] += samples
        by_function[re.sub(r":\d+\)$", ")", leaf)] += samples
    return by_category, by_function


def profile(work: Path, stage: str, rate: int, raw: Path) -> dict:
    """Run the stage under py-spy; its report, its CPU (py-spy's own left out) and the raw samples."""
    local = Path(sys.executable).with_name("py-spy")
    spy = str(local) if local.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found beside this interpreter or on PATH: pip install 'py-spy>=0.4,<0.5'")
    command = [spy, "record", "--subprocesses", "--format", "raw", "--rate", str(rate), "--output", str(raw),
               "--", sys.executable, str(REPO / "bench" / "scale_stage.py"), str(work), stage]
    report, usage, sampler = sampled(command, f"the {stage} stage under py-spy")
    if not raw.exists():
        raise SystemExit(f"py-spy wrote no samples for the {stage} stage")
    own = sampler.cpu.get(sampler.root, 0.0)
    # as scale.stage: wait4 misses the workers nobody waits for, the samples the last half second (py-spy's too)
    cpu = max(sum(s for pid, s in sampler.cpu.items() if pid != sampler.root), usage.ru_utime + usage.ru_stime - own)
    return {"report": report, "cpu_s": round(cpu, 2), "profiler_cpu_s": round(own, 2)}


def shares(by_category: Counter, rate: int, cpu_s: float) -> dict[str, dict[str, float]]:
    """Each category's seconds (samples / rate) and share of the stage's CPU; what py-spy could not see is
    the CPU left over (none when the sampled seconds exceed it, as they do under load)."""
    seconds = {name: samples / rate for name, samples in by_category.items()}
    seconds[UNSAMPLED] = max(0.0, cpu_s - sum(seconds.values()))
    whole = max(cpu_s, sum(seconds.values())) or 1.0
    return {name: {"seconds": round(s, 2), "share": round(s / whole, 4)}
            for name, s in sorted(seconds.items(), key=lambda item: -item[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="a bench/scale.py --keep folder whose STAGE has work left")
    ap.add_argument("stage", choices=("normalise", "dedupe", "index"))
    ap.add_argument("--rate", type=int, default=50, help="samples a second (py-spy's --rate)")
    ap.add_argument("--raw", type=Path, help="keep py-spy's raw stacks here (default: a temporary file)")
    ap.add_argument("--top", type=int, default=15, help="functions to list by their own time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw or Path(tmp) / "stacks.txt"
        run = profile(args.work.resolve(), args.stage, args.rate, raw)
        by_category, by_function = classify(raw)
    table = shares(by_category, args.rate, run["cpu_s"])
    samples = sum(by_function.values())
    print(f"{args.stage}: {run['cpu_s']} CPU-s (py-spy's own {run['profiler_cpu_s']}), {samples} samples "
          f"at {args.rate} a second, load {os.getloadavg()[0]:.2f}")
    for name, row in table.items():
        print(f"  {name:<18} {row['seconds']:>9.1f} s  {row['share']:6.1%}")
    print(f"  own time, the top {args.top}:")
    for function, n in by_function.most_common(args.top):
        print(f"    {n / samples:6.1%}  {function[:110]}")
    print(json.dumps({"stage": args.stage, **run, "rate": args.rate, "samples": samples, "categories": table,
                      "top": [[f, n] for f, n in by_function.most_common(args.top)]}))


if __name__ == "__main__":
    main()
