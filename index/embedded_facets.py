"""Facet counts on the embedded index, and the count of works in the same aggregation pass.

One tantivy aggregation over the query's matches counts every facet asked for and, for a search that
groups editions (:mod:`index.works`), the works' HyperLogLog cardinality and the records too: a grouped
page then needs no second pass over its matches to say "about N works", and knows how many editions a
work has on average before it fetches any hit.

The pass runs on a worker thread (:func:`pending`) while the search's own thread fetches the page: tantivy
releases the GIL, so on two cores a query waits for the longer of the two, not their sum (the same CPU).
(Counting the subject facet apart was tried twice and dropped: on a second worker, no gain in the quiet p95 at
1M for ~10% more CPU, BENCHMARKS.md ``tail9``; on the worker while the search's thread counted the rest after
its page, a shorter critical path by CPU but a worse wall p95 in the one quiet pair measured, ``quiet15``.)
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import tantivy
from tantivy import Query

from .backend import SearchQuery
from .works import HASH_FIELD

#: Facet name → fast field holding its values.
FACET_FIELDS = {"library": "library", "region": "region", "language": "language", "format": "format",
                "year": "year", "subject": "subject_facet", "classification": "class_facet"}
#: Values asked for beyond those shown, so values tied at the cut are ordered by value, as Elasticsearch does.
TIE_MARGIN = 50
#: The aggregations counting works and records beside the facets (not facet names).
WORKS_AGG, RECORDS_AGG = "_works", "_records"
#: Threads counting facets beside the searches of this process: one a core (a web server's concurrent searches
#: queue for them, so the facet passes never take more cores than there are).
CORES = os.cpu_count() or 2
_pool: tuple[int, ThreadPoolExecutor] | None = None  # with the process id: a forked child's threads are gone
_pool_lock = threading.Lock()

T = TypeVar("T")
#: The facets' top values, and the works' and records' counts when asked (:func:`count`).
Counts = tuple[dict[str, list[tuple[str, int]]], "tuple[int, int] | None"]


def pending(work: Callable[[], T], done: Callable[[T], None]) -> Callable[[], T]:
    """``work`` as a call that waits for its result (or raises its error), handing it to ``done`` once (the
    caller's cache).  With a core idle the work starts on a worker thread now; without one, or when no worker
    has started it when its result is wanted, it runs in the caller's thread when first wanted — on a busy
    machine a hand-over waits for the scheduler twice (the bench's p95 at load 4 on two cores: 95–99 → 127–136
    ms wall), for no gain, and a search whose page finds nothing then never counts at all."""
    call = _start(work) if idle_core() else work
    kept: list = []

    def result() -> T:
        if not kept:
            kept.append(call())
            done(kept[0])
        return kept[0]
    return result


def _start(work: Callable[[], T]) -> Callable[[], T]:
    """``work`` handed to a worker; the call returned waits for its result, or runs it in the caller's thread
    when no worker has started it yet (every worker busy: waiting could take longer than the work)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(CORES, thread_name_prefix="unioncat-facets"))
        future = _pool[1].submit(work)
    return lambda: work() if future.cancel() else future.result()


def idle_core() -> bool:
    """Whether a core is free now: fewer tasks runnable (this one included) than cores, as Linux's
    ``/proc/loadavg`` counts them at this instant; assumed where there is no such file."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            return int(fh.read().split()[3].split(b"/")[0]) < CORES
    except (OSError, ValueError, IndexError):
        return True


def count(searcher: tantivy.Searcher, query: Query, q: SearchQuery, names: tuple[str, ...]) -> Counts:
    """The top values of each facet in ``names``, and when ``q`` groups works the number of works
    (HyperLogLog) and of records matching (every record has a work hash; counting them costs ~2 ms at
    955k matches)."""
    spec = {name: {"terms": {"field": FACET_FIELDS[name], "size": q.facet_size + TIE_MARGIN}} for name in names}
    if q.group_works:
        spec[WORKS_AGG] = {"cardinality": {"field": HASH_FIELD}}
        spec[RECORDS_AGG] = {"value_count": {"field": HASH_FIELD}}
    result = searcher.aggregate(query, spec)
    facets = {name: sorted(((_key(b["key"]), int(b["doc_count"])) for b in result.get(name, {}).get("buckets", [])),
                           key=lambda kv: (-kv[1], _order(kv[0])))[:q.facet_size]
              for name in names}
    if not q.group_works:
        return facets, None
    return facets, (int(result[WORKS_AGG]["value"]), int(result[RECORDS_AGG]["value"]))


def asked(q: SearchQuery, names: tuple[str, ...]) -> tuple:
    """What the counts of ``names`` for ``q`` depend on (the query and filters, not the page or sort): a
    cache key, with the index generation beside it."""
    return (q.text, tuple(sorted((k, tuple(v)) for k, v in q.filters.items())), tuple(sorted(q.fields.items())),
            tuple(sorted((k, tuple(v)) for k, v in q.any_of.items())), q.fuzzy, q.fuzzy_one,
            tuple(names), q.facet_size, q.group_works)


def _key(key) -> str:
    return str(int(key)) if isinstance(key, float) and key.is_integer() else str(key)


def _order(key: str) -> tuple:
    """Numbers (years) in numeric order, other values in code-point order (Elasticsearch's ``_key``)."""
    return (0, int(key), "") if key.lstrip("-").isdigit() else (1, 0, key)
