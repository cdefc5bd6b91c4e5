"""Whole answers of the embedded index, remembered until the index changes (a searcher's query-result cache).

The same search is asked again and again: a region's or a library's catalogue in title order (the landing
page of a browse, every reader who opens it), the next reader's "history of china", a reader going back a
page.  Such a search on 1M records costs 30–55 ms of CPU (a title-sorted page over 955k matches looks up a
sort term for each hit it ranks, per segment), and its answer does not change until the next commit — as
Solr's ``queryResultCache`` and Elasticsearch's request cache keep theirs.  Answers are held per index
generation and dropped when the index is reloaded; bounded by the documents they hold (hits and editions), so a
few hundred pages at most.  Each answer is handed out as a copy: callers may change what they get.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

from .backend import FACETS, SearchQuery, SearchResults
from .embedded_facets import asked

#: documents (hits and their editions) the remembered answers may hold together: ~10k, some tens of MB
DOCS = 10_000


def key(q: SearchQuery, generation: int) -> tuple:
    """Everything an answer to ``q`` depends on (:func:`index.embedded_facets.asked`, and the page and order)."""
    return (*asked(q, tuple(q.facets if q.facets is not None else FACETS)), q.offset, q.limit, q.sort, generation)


class Answers:
    """A least-recently-used cache of :class:`SearchResults` holding at most ``docs`` documents."""

    def __init__(self, docs: int = DOCS):
        self.docs = docs
        self._held = 0
        self._answers: OrderedDict[tuple, tuple[SearchResults, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> SearchResults | None:
        with self._lock:
            if key not in self._answers:
                return None
            self._answers.move_to_end(key)
            return _copy(self._answers[key][0])

    def put(self, key: tuple, results: SearchResults) -> SearchResults:
        """Remember a copy of ``results`` (unless it alone would hold more than the cache may); ``results``."""
        size = sum(1 + len(hit.editions) for hit in results.hits)
        if size <= self.docs:
            with self._lock:
                self._held -= self._answers.pop(key, (None, 0))[1]
                self._answers[key] = (_copy(results), size)
                self._held += size
                while self._held > self.docs:
                    self._held -= self._answers.popitem(last=False)[1][1]
        return results

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._held = 0


def _copy(results: SearchResults) -> SearchResults:
    """``results`` with hits, documents, editions and facet lists of their own (values inside shared)."""
    hits = [dataclasses.replace(h, doc=dict(h.doc), editions=[dict(e) for e in h.editions]) for h in results.hits]
    return dataclasses.replace(results, hits=hits, facets={name: list(values) for name, values in results.facets.items()})
