"""Browse walks on the embedded index through its term dictionary, never through its documents.

A browse list (:mod:`index.browse`) is a walk in value order through one keyword field from a start.
tantivy's composite aggregation reads every matched document's values to do it, so a letter jump
("s", a whole shelf class) read most of the index.  The term dictionary already holds each field's
values sorted, with how many documents carry each: :meth:`tantivy.Searcher.terms_with_prefix` reads
the values under one prefix.  :class:`TermWalk` keeps, per searcher generation, the sorted list of
the *buckets* present in a field (each value's first few characters, :func:`bucket`), so a walk
finds the bucket of its start by bisection and reads only the buckets it needs, a few dozen values
each, whatever the size of the catalogue.

Values sort by their UTF-8 bytes in the dictionary, which is Python's code-point order, the order
of the composite aggregation on either backend: both give the same page.
"""
from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right

import tantivy

#: Characters of a value that name its bucket (after a shelf list's scheme: ``lcc\x1e`` + this many).
BUCKET = 4
_SCHEME_SEP = "\x1e"


def bucket(value: str) -> str:
    """The bucket of a value: its first :data:`BUCKET` characters, counted after a shelf scheme."""
    sep = value.find(_SCHEME_SEP, 0, 8)
    return value[:sep + 1 + BUCKET] if sep >= 0 else value[:BUCKET]


class TermWalk:
    """Walks of one index generation's keyword fields; ``reset`` when a new generation is searched."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._buckets: dict[str, list[str]] = {}

    def walk(self, searcher: tantivy.Searcher, generation: int, field: str, after: str | None, size: int,
             descending: bool) -> list[tuple[str, int]]:
        """``size`` values (with their live document counts) after ``after`` (exclusive; None: from the end
        the walk starts at), ascending or descending."""
        buckets = self._buckets_of(searcher, generation, field)
        start = bucket(after) if after is not None else None
        if descending:
            i = len(buckets) - 1 if start is None else bisect_right(buckets, start) - 1
            step = -1
        else:
            i, step = (0 if start is None else bisect_left(buckets, start)), 1
        found: list[tuple[str, int]] = []
        everything = tantivy.Query.all_query()
        while 0 <= i < len(buckets) and len(found) < size:
            name = buckets[i]
            values = [(v, n) for v, n in searcher.terms_with_prefix(field, name, filter_query=everything)
                      if n and bucket(v) == name and (after is None or (v < after if descending else v > after))]
            found += sorted(values, reverse=descending)
            i += step
        return found[:size]

    def _buckets_of(self, searcher: tantivy.Searcher, generation: int, field: str) -> list[str]:
        """The sorted buckets of ``field``, read once per generation (the whole dictionary, in Rust)."""
        with self._lock:
            if generation != self._generation:
                self._generation, self._buckets = generation, {}
            found = self._buckets.get(field)
            if found is None:
                found = self._buckets[field] = sorted({bucket(v) for v, _ in searcher.terms_with_prefix(field, "")})
            return found
