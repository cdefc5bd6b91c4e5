"""Whole answers of the embedded index, remembered until the index changes (a searcher's query-result cache).

The same search is asked again and again: a region's or a library's catalogue in title order (the landing
page of a browse, every reader who opens it), the next reader's "history of china", a reader going back a
page.  Such a search on 1M records costs 30–55 ms of CPU (a title-sorted page over 955k matches looks up a
sort term for each hit it ranks, per segment), and its answer does not change until the next commit — as
Solr's ``queryResultCache`` and Elasticsearch's request cache keep theirs.  Answers are held per index
generation and dropped when the index is reloaded.  Each is held pickled: one bytes object the garbage
collector does not walk (held as objects, 10k documents made its full collections twice as long: 77 → 163 ms
at 1M), bounded in bytes, and every reader gets a copy of their own (~1 ms for a page of 20 works).
"""
from __future__ import annotations

import dataclasses
import pickle
import threading
from collections import OrderedDict

from .backend import SearchQuery, SearchResults

#: bytes the pickled answers may take together
BYTES = 32_000_000


def key(q: SearchQuery, generation: int) -> tuple:
    """Everything an answer to ``q`` depends on: every field of the query, read generically so that a field
    added to :class:`SearchQuery` later can never be left out of the key, and the index generation."""
    return (*(_frozen(getattr(q, f.name)) for f in dataclasses.fields(q)), generation)


def _frozen(value):
    """``value`` hashable and independent of dict order."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return tuple(value) if isinstance(value, list) else value


class Answers:
    """A least-recently-used cache of :class:`SearchResults`, pickled, of at most ``size`` bytes."""

    def __init__(self, size: int = BYTES):
        self.size = size
        self._held = 0
        self._answers: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> SearchResults | None:
        with self._lock:
            if key not in self._answers:
                return None
            self._answers.move_to_end(key)
            kept = self._answers[key]
        return pickle.loads(kept)

    def put(self, key: tuple, results: SearchResults) -> SearchResults:
        """Remember ``results`` (unless it alone would take more than the cache may); ``results``."""
        kept = pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
        if len(kept) <= self.size:
            with self._lock:
                self._held -= len(self._answers.pop(key, b""))
                self._answers[key] = kept
                self._held += len(kept)
                while self._held > self.size:
                    self._held -= len(self._answers.popitem(last=False)[1])
        return results

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._held = 0
