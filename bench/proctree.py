"""The processes below a process, read from /proc: what a bench measures (the CPU of a worker and all it forked)
and what it stops (rq's work horse runs in a session of its own, so killing a process group is not enough).

One walker for the benches and the tests that start workers (``bench/dedupe_rq.py``, ``bench/scale.py``'s
sampler, ``tests/test_jobs.py``, ``tests/test_dedupe_partitions.py``)."""
from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def table() -> tuple[dict[int, float], dict[int, list[int]]]:
    """Every process's CPU-seconds (its reaped children's included) and every process's children."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, float] = {}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = sum(int(x) for x in fields[11:15]) / tick   # utime stime cutime cstime
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return stats, children


def tree(pids: list[int], children: dict[int, list[int]] | None = None) -> list[int]:
    """The processes and all their live descendants, parents first (``children``: a :func:`table` read)."""
    children = table()[1] if children is None else children
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu(pids: list[int]) -> float:
    """CPU-seconds of processes, their reaped children and their live descendants."""
    stats, children = table()
    return sum(stats.get(pid, 0.0) for pid in tree(pids, children))


def kill_tree(pid: int) -> None:
    """SIGKILL a worker and every descendant.  rq's work horse runs in a session of its own, so killing the
    worker's process group leaves it running: a finished run's horse went on with the chain's index link
    (CPU taken from the next run) and took the build lock after the next run had cleared Redis.  The tree is
    stopped first so nothing forks between listing and killing."""
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for p in tree([pid]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
