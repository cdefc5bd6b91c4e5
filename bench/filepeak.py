"""The largest size a file reaches while a benchmark runs (``bench/dedupe_store.py``, ``bench/scale.py``)."""
from __future__ import annotations

import threading
from pathlib import Path


class PeakSize:
    """The largest size a file reached while the block ran, sampled every ``every`` seconds (the WAL: a read
    left open through a pass keeps SQLite from checkpointing, and the WAL then grows with what the pass writes)."""

    def __init__(self, path: Path, every: float = 0.5):
        self.path, self.every, self.peak = path, every, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.peak = max(self.peak, self.path.stat().st_size)
            except FileNotFoundError:
                pass

    def __enter__(self) -> PeakSize:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
