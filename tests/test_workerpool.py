"""The pool's error says what ended a worker: a signal, or an exit of its own after an error it printed."""
from __future__ import annotations

import os
import signal

import pytest

from runtime.workerpool import WorkerDied, worker_pool


def _fails() -> None:
    raise RuntimeError("cannot open the block store")


def _killed(_: int) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_by_a_signal_is_said_so():
    with pytest.raises(WorkerDied, match=r"of the test's work was killed by a signal \(SIGKILL: the OOM killer"):
        with worker_pool(2, "test's work") as pool:
            list(pool.map(_killed, range(4)))


def test_a_worker_whose_start_failed_is_not_said_to_be_killed():
    """An initializer that raises ends the worker by itself (its traceback on the forkserver's stderr); the
    pool then stops the others with SIGTERM, which is not what ended it."""
    with pytest.raises(WorkerDied) as died:
        with worker_pool(2, "test's work", initializer=_fails) as pool:
            list(pool.map(abs, range(4)))
    said = str(died.value)
    assert "ended before its work was done (" in said and "its error is above)" in said and "killed" not in said
