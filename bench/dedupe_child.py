"""One dedupe pass in a forked process, measured alone (shared by ``bench/dedupe.py`` and ``bench/dedupe_store.py``)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import proctree
from unioncat import pipeline


def dedupe_in_child(settings, sources) -> tuple[dict, float, float, float]:
    """One dedupe pass in a forked process: (its report, wall s, CPU s, peak RSS MB).

    A child of its own, so the peak RSS and CPU are the dedupe's alone (not the harvest's or the
    normaliser's before it) and each pass starts from the store, as a scheduled build does.  The CPU
    includes the scoring workers': children of a forkserver the child never waits for, so ``wait4`` does not
    count them — the child reads its descendants' from /proc as it ends (the forkserver's reaped workers in
    its own count) and sends it with the report.
    """
    read, write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 1
        try:
            cat = pipeline.Catalogue(settings, sources)
            report = pipeline.dedupe_stage(cat, progress=lambda m: print(m, file=sys.stderr))
            cat.close()
            stats, children = proctree.table()
            below = sum(stats.get(p, 0.0) for p in proctree.tree([os.getpid()], children)[1:])
            with os.fdopen(write, "w") as out:
                json.dump({"report": dataclasses.asdict(report), "below_cpu_s": below}, out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"the dedupe child failed (status {status})")
    sent = json.loads(text)
    return (sent["report"], time.perf_counter() - started, usage.ru_utime + usage.ru_stime + sent["below_cpu_s"],
            usage.ru_maxrss / 1024)
