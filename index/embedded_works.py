"""Works grouping on the embedded index (:mod:`index.works`): over-fetch, group by the work's hash.

tantivy has no collapse.  The ranked hits' addresses come back without their documents and the
``work_hash`` fast field names each one's work, so grouping hundreds of hits costs microseconds; only the
page's records and their editions are loaded.  Ranked hits are fetched :data:`OVERFETCH` times the works
wanted, more (as many as the editions seen so far make likely) if editions crowd them out, up to the result
window.
"""
from __future__ import annotations

from collections.abc import Callable

import tantivy
from tantivy import Query

from storage.jsoncodec import loads

from .backend import MAX_WINDOW, Hit, SearchQuery
from .works import EDITIONS, EXACT_UP_TO, HASH_FIELD

OVERFETCH = 3
#: (query, limit) → the ranked (score, address) pairs and the number of records matching
Ranked = Callable[[Query, int], tuple[list[tuple[float, tantivy.DocAddress]], int]]
#: () → the works' HyperLogLog count and the records' count of the facet pass, or None (waiting for it)
Counted = Callable[[], "tuple[int, int] | None"]


def page(searcher: tantivy.Searcher, schema: tantivy.Schema, query: Query, q: SearchQuery,
         ranked: Ranked, counted: Counted = lambda: None,
         matching: Query | None = None) -> tuple[list[Hit], int, int, bool]:
    """The page's works as hits with their editions, the number of works, of records, and whether the
    number of works is an estimate.  ``counted`` waits for the works' HyperLogLog count and the records'
    count when the facet pass (on another thread) makes them, else gives ``None`` (the works used only above
    :data:`~index.works.EXACT_UP_TO` records, as the count it replaces; both to size a sorted page's first
    fetch); ``matching`` is ``query`` without its ranking boosts, which counts the same records for less."""
    want = q.offset + max(q.limit, 1)
    # In score order one ranked pass usually does: up to EXACT_UP_TO records it holds every hit, which the
    # exact count and the editions need anyway, and a longer heap costs little beside scoring every match; so
    # it starts without waiting for the facet pass (a short first fetch is grown below).  Not in a field's
    # order: each hit then carries its sort value, a term looked up (~0.15 ms a hit), and each pass reads
    # every match again, so the first is sized by the editions per work the facet pass saw.
    known = counted() if q.sort != "relevance" else None
    likely = _likely(want, known[1], known[0]) if known else 0
    fetch = min(max(want * OVERFETCH, likely, EXACT_UP_TO if q.sort == "relevance" else 0), MAX_WINDOW)
    while True:
        hits, records = ranked(query, fetch)
        hashes = searcher.fast_field_values(HASH_FIELD, [a for _, a in hits])
        heads: dict[int, tuple[float, tantivy.DocAddress]] = {}
        for hit, work in zip(hits, hashes):
            heads.setdefault(work, hit)
        if len(heads) >= want or len(hits) >= records or fetch >= MAX_WINDOW:
            break
        fetch = _refetch(fetch, want, len(hits), len(heads))
    shown = list(heads.items())[q.offset:q.offset + q.limit]
    works, estimate, hits, hashes = _count(searcher, query, hits, hashes, records, ranked, counted)
    wanted = {w for w, _ in shown}
    if len(hits) < records and not _complete(searcher, schema, matching or query, wanted, hashes):
        hits, hashes = _within(searcher, schema, query, wanted, ranked)  # editions ranked beyond the hits in hand
    editions = _editions(searcher, hits, hashes, wanted, {_at(a) for _, (_, a) in shown})
    out = []
    for work, (score, address) in shown:
        doc = _source(searcher, address)
        out.append(Hit(id=doc["id"], score=score, doc=doc, editions=editions.get(work, [])))
    return out, works, records, estimate


def _refetch(fetched: int, want: int, hits: int, works: int) -> int:
    """How many ranked hits to fetch next when ``hits`` held only ``works`` of the ``want`` works: as many as
    the editions per work seen so far make likely (at least half as many again, at most four times as
    many).  In title order a work's editions sort together, and every hit costs a term lookup (~0.15 ms a
    hit at 1M, 9 segments): a title-sorted page of 955k matches took 70 ms of CPU with ×4 (60 hits, then
    240), 52 ms with this (60, then 100; BENCHMARKS.md ``search1m``)."""
    return min(max(_likely(want, hits, works), fetched * 3 // 2), fetched * 4, MAX_WINDOW)


def _likely(want: int, records: int, works: int) -> int:
    """The hits likely to hold ``want`` works when ``records`` hold ``works``: their ratio, a quarter to spare."""
    return -(-want * records * 5 // (4 * max(works, 1)))


def _count(searcher, query, hits, hashes, records: int, ranked: Ranked,
           counted: Counted) -> tuple[int, bool, list, list[int]]:
    """Works matching: exact up to :data:`~index.works.EXACT_UP_TO` records (every hit then in hand, returned
    with its work hash, so the editions need no other query), HyperLogLog above."""
    if records > EXACT_UP_TO:
        known = counted()
        works = known[0] if known else int(searcher.cardinality(query, HASH_FIELD))
        return min(works, records), True, hits, hashes
    if len(hits) < records:
        hits, _ = ranked(query, records)
        hashes = searcher.fast_field_values(HASH_FIELD, [a for _, a in hits])
    return len(set(hashes)), False, hits, hashes


def _complete(searcher, schema, matching: Query, works: set[int], hashes: list[int]) -> bool:
    """Whether the hits in hand hold every matching record of ``works``: a count, unscored (ordered by a
    fast field), is much cheaper than ranking those records again, and most pages need no more."""
    if not works:
        return True
    held = sum(1 for work in hashes if work in works)
    result = searcher.search(_of_works(schema, matching, works), 1, count=True, order_by_field=HASH_FIELD)
    return result.count == held


def _of_works(schema, query: Query, works: set[int]) -> Query:
    """``query`` among the records of ``works``.  The works are one term query each, scored 1.0 together as a
    term set is: a term set on this integer field reads all of its fast-field column (~2.7 ms at 1M, 9
    segments, for any number of works), a term query only each work's few postings (~0.1 ms for 20 works;
    the same records, the same scores; BENCHMARKS.md ``tail9``)."""
    any_work = Query.boolean_query([(tantivy.Occur.Should, Query.term_query(schema, HASH_FIELD, work))
                                    for work in sorted(works)])
    return Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, Query.const_score_query(any_work, 1.0))])


def _within(searcher, schema, query: Query, works: set[int], ranked: Ranked) -> tuple[list, list[int]]:
    """The ranked hits of ``query`` among the records of ``works``, with their work hashes."""
    if not works:
        return [], []
    hits, _ = ranked(_of_works(schema, query, works), len(works) * (EDITIONS + 1))
    return hits, searcher.fast_field_values(HASH_FIELD, [a for _, a in hits])


def _editions(searcher, hits: list, hashes: list[int], works: set[int], heads: set) -> dict[int, list[dict]]:
    """Up to :data:`~index.works.EDITIONS` matching records of each of ``works`` that are not its head, in
    the query's order."""
    found: dict[int, list[dict]] = {}
    for (_, address), work in zip(hits, hashes):
        if work in works and _at(address) not in heads and len(found.setdefault(work, [])) < EDITIONS:
            found[work].append(_source(searcher, address))
    return found


def _at(address: tantivy.DocAddress) -> tuple[int, int]:
    return address.segment_ord, address.doc


def _source(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> dict:
    return source(searcher.doc(address))


def source(doc: tantivy.Document) -> dict:
    """A stored document's ``_source`` (:mod:`index.embedded_doc` writes it), read through orjson: a
    page shows up to 220 of them (``json`` reading them was ~5% of a query's time at 1M, profiled)."""
    return loads(doc.get_first("_source"))
