"""Facet counts on the embedded index, and the count of works in the same aggregation pass.

One tantivy aggregation over the query's matches counts every facet asked for and, for a search that
groups editions (:mod:`index.works`), the works' HyperLogLog cardinality and the records too: a grouped
page then needs no second pass over its matches to say "about N works", and knows how many editions a
work has on average before it fetches any hit.

With a core idle the subject facet is counted on a worker thread while the search's own thread fetches
the page and then counts the other facets and the works (:func:`parted`): tantivy releases the GIL, so on two
cores a query waits for the longer of the two, not their sum.  The subject facet alone is 60–85% of the pass
at 1M (turning each segment's top 800 buckets back into terms), about what a broad page costs with the rest;
the whole pass on the worker left a one-word query waiting for it (BENCHMARKS.md ``quiet15``; ``tail9`` had
both parts on workers, three threads on two cores).  Without an idle core it is one pass in the search's
thread, when its counts are first wanted.
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

#: Facets counted on a worker of their own when a core is idle (:func:`parted`).
APART = ("subject",)

T = TypeVar("T")
#: The facets' top values, and the works' and records' counts when asked (:func:`count`).
Counts = tuple[dict[str, list[tuple[str, int]]], "tuple[int, int] | None"]


def pending(work: Callable[[], T], done: Callable[[T], None]) -> Callable[[], T]:
    """``work`` as a call that waits for its result (or raises its error), handing it to ``done`` once (the
    caller's cache).  With a core idle the work starts on a worker thread now; without one, or when no worker
    has started it when its result is wanted, it runs in the caller's thread when first wanted — on a busy
    machine a hand-over waits for the scheduler twice (the bench's p95 at load 4 on two cores: 95–99 → 127–136
    ms wall), for no gain, and a search whose page finds nothing then never counts at all."""
    return _once(_start(work) if idle_core() else work, done)


def _once(call: Callable[[], T], done: Callable[[T], None]) -> Callable[[], T]:
    """``call`` made once, when first wanted; its result handed to ``done``."""
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


def parted(counts: Callable[[tuple[str, ...], bool], Counts], names: tuple[str, ...], works: bool,
           done: Callable[[Counts], None]) -> Callable[[], Counts]:
    """The counts of ``counts(names, works)`` as :func:`pending` gives them, but with a core idle the facets
    :data:`APART` go to a worker now and the caller's thread counts the others (and the works) when it first
    wants them, after its page.  Each facet is its own aggregation either way, so the counts are the same; the
    second pass over the matches costs ~1–3 ms of CPU."""
    apart = tuple(name for name in names if name in APART)
    rest = tuple(name for name in names if name not in APART)
    if not apart or not (rest or works):
        return pending(lambda: counts(names, works), done)
    if not idle_core():
        return _once(lambda: counts(names, works), done)
    far = _start(lambda: counts(apart, False))

    def joined() -> Counts:
        near = counts(rest, works)
        facets = {**far()[0], **near[0]}
        return {name: facets[name] for name in names}, near[1]
    return _once(joined, done)


def count(searcher: tantivy.Searcher, query: Query, q: SearchQuery, names: tuple[str, ...],
          works: bool | None = None) -> Counts:
    """The top values of each facet in ``names``, and when ``works`` (by default: when ``q`` groups works) the
    number of works (HyperLogLog) and of records matching (every record has a work hash; counting them costs
    ~2 ms at 955k matches)."""
    works = q.group_works if works is None else works
    spec = {name: {"terms": {"field": FACET_FIELDS[name], "size": q.facet_size + TIE_MARGIN}} for name in names}
    if works:
        spec[WORKS_AGG] = {"cardinality": {"field": HASH_FIELD}}
        spec[RECORDS_AGG] = {"value_count": {"field": HASH_FIELD}}
    result = searcher.aggregate(query, spec)
    facets = {name: sorted(((_key(b["key"]), int(b["doc_count"])) for b in result.get(name, {}).get("buckets", [])),
                           key=lambda kv: (-kv[1], _order(kv[0])))[:q.facet_size]
              for name in names}
    if not works:
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
