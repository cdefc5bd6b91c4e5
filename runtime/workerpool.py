"""A pool of worker processes that fails, rather than hangs, when one of its workers dies.

Two stages use one: the normalise stage parses in worker processes (``unioncat.pipeline``), and the dedupe
scores its blocks in them (``dedupe.blocking``, ``UNIONCAT_DEDUPE_WORKERS``).  A worker
killed by a signal — the kernel's OOM killer, an operator's ``kill`` — hung both for good:

* ``multiprocessing.Pool`` (what the dedupe used) replaces a dead worker but loses its task: the
  ``AsyncResult`` of the batch it held is never set and ``get()`` waits forever.
* ``concurrent.futures.ProcessPoolExecutor`` notices the death — its futures raise ``BrokenProcessPool`` —
  but CPython 3.11's shutdown then joins the thread that feeds the workers' call queue, and that thread
  stays blocked writing the next batch (a megabyte or so, far more than a pipe holds) into a pipe no live
  worker reads any more (measured: a normaliser worker SIGKILLed 2.5 s into a 60,000-record stage, no
  return in 300 s).

Here the work goes to a ``ProcessPoolExecutor`` whose own read end of that pipe is closed first when it
breaks, so the write fails, the feeder ends and shutdown returns, and the caller gets :class:`WorkerDied`
saying what happened.  Both stages commit batch by batch and move their checkpoint after each, so running
one again goes on from there.

The other way round, the process that owns the pool killed (``kill -9`` of ``unioncat build``, the OOM
killer choosing it), left its workers for good: blocked writing a result into a pipe a sibling worker also
holds open, or waiting for work, with a forkserver and a resource tracker kept alive by them — and a dedupe
worker's open SQLite read kept the WAL from ever being checkpointed.  Each worker now watches the owner
(:func:`_watch_owner`: a pidfd, or a poll where there is none) and exits the moment it is gone; the
forkserver and the resource tracker then end by themselves.
"""
from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager


def cores() -> int:
    """The cores this process may run on (its affinity: a container's or ``taskset``'s cpuset), where
    ``os.cpu_count()`` would count the whole machine's — how many workers a stage starts by default."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:      # not Linux
        return os.cpu_count() or 1


class WorkerDied(RuntimeError):
    """A worker process of the pool died (killed by a signal) while the pool had work for it."""


@contextmanager
def worker_pool(workers: int, what: str, *, preload: list[str] | None = None,
                initializer: Callable[[], None] | None = None) -> Iterator[ProcessPoolExecutor]:
    """``workers`` processes; ``what`` names the work in the error a dead worker raises.

    The workers come from a forkserver (a clean process: nothing of the caller's state, no inherited
    connections or locks), which imports ``preload`` once before its first fork — if this process started
    none yet (one process's stages share the one forkserver ``multiprocessing`` keeps; a worker imports what
    its tasks need that was not preloaded).  Never forked from the caller: the caller may be the web app's
    process, whose other threads can hold a lock (a logging handler's, a connection pool's) at the moment of
    a fork, left held for good in the child.  Each worker exits the moment this process is gone
    (:func:`_watch_owner`); ``initializer`` (picklable: it is sent to every worker) then runs in it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload or [])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_watch_owner,
                               initargs=(os.getpid(), initializer))
    try:
        yield pool
    except BrokenProcessPool as exc:
        processes = list((getattr(pool, "_processes", None) or {}).values())   # private: looked up, not relied on
        _let_go(pool)
        how = _how_it_ended(processes)
        raise WorkerDied(f"a worker process of the {what} {how}; what was committed before is kept — run it "
                         "again to go on from there") from exc
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _how_it_ended(processes: list) -> str:
    """What ended the pool's dead worker, from the exit codes of its processes once the pool has joined them:
    a signal (the OOM killer's SIGKILL, or an operator's), or an exit of its own — an error it printed, such
    as its initializer failing.  Read only after the pool's own thread is done with them: a forkserver
    worker's exit code is a message read once, and a second reader at the same time gets none (Python then
    says 255).  A broken pool sends SIGTERM to the workers still alive, so that is the dead one's only when
    nothing else is."""
    codes = [p.exitcode for p in processes if p.exitcode is not None]
    ranked = sorted(codes, key=lambda code: (code == -signal.SIGTERM, code >= 0))
    if not ranked:
        return "died"
    code = ranked[0]
    if code >= 0:
        return f"ended before its work was done ({f'exit status {code}: ' if code else ''}its error is above)"
    name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
    return f"was killed by a signal ({name}: the OOM killer, or by hand)"


def _let_go(pool: ProcessPoolExecutor) -> None:
    """Shut a broken pool down without the hang: close this process's read end of the workers' call queue
    (a private attribute: looked up, not relied on), so the feeder thread's blocked write fails.  A feeder
    that was not blocked closes that end itself once the pool's thread closes the queue, and may do so at
    the same moment: the second close then fails (EBADF), which changes nothing here."""
    reader = getattr(getattr(pool, "_call_queue", None), "_reader", None)
    if reader is not None:
        try:
            reader.close()
        except OSError:
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def _watch_owner(owner: int, then: Callable[[], None] | None) -> None:
    """In a new worker: exit the moment process ``owner`` (the pool's) has ended; then ``then``.

    A daemon thread waits on a pidfd of the owner (readable once it has exited: Linux 5.3 and later), or
    where there is none polls it once a second.  ``os._exit``: the owner's transactions are gone with it, so
    there is nothing for the worker to finish or clean up.  Ctrl-C reaches the whole process group; the owner
    alone answers it (it stops the pool), so a worker ignores it instead of printing a ``KeyboardInterrupt``
    from wherever it was."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        handle: int | None = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):     # not Linux, or a kernel without pidfds
        handle = None
    threading.Thread(target=_exit_after, args=(owner, handle), name="owner-watch", daemon=True).start()
    if then is not None:
        then()


def _exit_after(owner: int, handle: int | None) -> None:
    """Block until ``owner`` has ended (its pidfd ``handle`` readable, or gone from the process table)."""
    if handle is not None:
        select.select([handle], [], [])
    else:
        while True:
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                break
            except PermissionError:       # alive, another user's: cannot happen for our own parent
                pass
            time.sleep(1.0)
    os._exit(1)
