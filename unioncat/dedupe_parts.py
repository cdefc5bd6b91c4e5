"""A dedupe pass's partitions: running one in any process, and running them all on this machine's cores.

``dedupe.partition`` cuts a pass's staging (a full pass), scoring and merging into partitions that share only
the database; :func:`dedupe_part` runs one of them wherever it is called — an rq job
(``unioncat.dedupe_jobs``: partitions spread over machines) or a worker process here.

Without rq (the embedded default, and any installation that has not set ``UNIONCAT_DEDUPE_PARTITIONS``)
a pass big enough to pay for it runs its partitions on this machine's cores (:func:`local_partitions`):
one a worker process (``UNIONCAT_DEDUPE_WORKERS``, by default one per core: ``runtime.workerpool.cores``), each opening the catalogue
itself.  Only staging, scoring and merging fan out; planning the block walk and clustering stay in the
build's own process, as they stay in the rq orchestrator.  The partitions decide exactly what the pass in
one process decides (``tests/test_dedupe_partitions.py``); on SQLite their writes take the database's one
write lock in turn (each batch's transaction is short, and the busy timeout waits for the other's).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from functools import partial
from multiprocessing.queues import Queue
from queue import Empty

from dedupe.build import run_part
from dedupe.partition import Partitions
from runtime.workerpool import worker_pool

from .catalogue import Catalogue
from .settings import Settings

Progress = Callable[[str], None] | None
#: Changed records a pass must have before its partitions run in worker processes: starting them (a worker
#: each, its catalogue opened) costs about what a pass of a few thousand records does.
LOCAL_AFTER = 100_000


def dedupe_part(cat: Catalogue, task: str, args: dict, progress: Progress = None) -> dict:
    """One partition of a partitioned dedupe pass (staging, scoring or merging), wherever it runs."""
    return run_part(task, args, cat.records, cat.members, cat.source_order(), cat.holdings_feeds(), progress)


def local_partitions(cat: Catalogue, since: int, workers: int, progress: Progress = None) -> Partitions | None:
    """Partitions on ``workers`` worker processes of this machine for a pass of at least :data:`LOCAL_AFTER`
    changed records (those after ``seq`` ``since``) where there is more than one worker, else None: the pass
    runs in this process."""
    if workers <= 1 or cat.records.count_changed_since(since) < LOCAL_AFTER:
        return None
    return Partitions(workers, LocalFanout(cat.settings, workers, progress))


@dataclass(frozen=True)
class LocalFanout:
    """A :data:`dedupe.partition.Fanout` over worker processes of this machine: a partition each, what they
    say of their progress passed on to ``progress`` here (a pass at 5M stages for an hour)."""

    settings: Settings
    workers: int
    progress: Progress = None

    def __call__(self, task: str, tasks: list[dict]) -> list[dict]:
        said: Queue = multiprocessing.get_context("forkserver").Queue()
        results: dict[int, dict] = {}
        with worker_pool(min(self.workers, len(tasks)), f"dedupe's {task} partitions", preload=[__name__],
                         initializer=partial(_open, self.settings, said)) as pool:
            running = {pool.submit(_run, task, args): k for k, args in enumerate(tasks)}
            while running:
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                self._pass_on(said)
                for future in finished:
                    results[running.pop(future)] = future.result()
                    self._say(f"dedupe {task}: {len(results)}/{len(tasks)} partitions done")
        self._pass_on(said)
        said.close()
        return [results[k] for k in range(len(tasks))]

    def _pass_on(self, said: Queue) -> None:
        while True:
            try:
                self._say(said.get_nowait())
            except Empty:
                return

    def _say(self, message: str) -> None:
        if self.progress:
            self.progress(message)


_cat: Catalogue | None = None
_said: Queue | None = None


def _open(settings: Settings, said: Queue) -> None:
    """In a new worker: the catalogue its partitions run on (closed with the process), and where it says
    how far a partition got."""
    global _cat, _said
    _cat, _said = Catalogue(settings), said


def _run(task: str, args: dict) -> dict:
    assert _cat is not None and _said is not None, "a partition ran in a worker that opened no catalogue"
    said, name = _said, f"dedupe {task} partition {args['part'] + 1}/{args['parts']}"
    return dedupe_part(_cat, task, args, lambda message: said.put(f"{name}: {message}"))
