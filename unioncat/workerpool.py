"""A pool of worker processes that fails, rather than hangs, when one of its workers dies.

The normalise stage parses in worker processes (``pipeline._in_processes``).  A worker killed by a
signal — the kernel's OOM killer, an operator's ``kill`` — breaks a ``ProcessPoolExecutor``: its futures
raise ``BrokenProcessPool``.  But CPython 3.11's shutdown then joins the thread that feeds the workers'
call queue, and that thread stays blocked writing the next batch (a megabyte or so, far more than a
pipe holds) into a pipe no live worker reads any more: the stage hung for good (measured: a worker
SIGKILLed 2.5 s into a 60,000-record normalise, no return in 300 s).  Here the pool's own read end of that
pipe is closed first, so the write fails, the feeder ends and shutdown returns, and the caller gets
:class:`WorkerDied` saying what happened.  The stage's checkpoint moves only after each committed batch,
so running it again goes on from there.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager


class WorkerDied(RuntimeError):
    """A worker process of the pool died (killed by a signal) while the pool had work for it."""


@contextmanager
def worker_pool(workers: int, preload: list[str], what: str) -> Iterator[ProcessPoolExecutor]:
    """``workers`` processes from a forkserver that imported ``preload`` once; ``what`` names the work
    in the error a dead worker raises."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)   # imported once in the forkserver, not in every worker
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield pool
    except BrokenProcessPool as exc:
        _let_go(pool)
        raise WorkerDied(f"a worker process of the {what} died (killed by a signal: the OOM killer, or by "
                         "hand); what was committed before is kept — run it again to go on from there") from exc
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _let_go(pool: ProcessPoolExecutor) -> None:
    """Shut a broken pool down without the hang: close this process's read end of the workers' call queue
    (a private attribute: looked up, not relied on), so the feeder thread's blocked write fails."""
    reader = getattr(getattr(pool, "_call_queue", None), "_reader", None)
    if reader is not None:
        reader.close()
    pool.shutdown(wait=True, cancel_futures=True)
