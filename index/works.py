"""Works in result lists: the editions and formats of one work (dedupe's work key) as one result.

With :attr:`SearchQuery.group_works` a backend pages through *works*, not records: each hit is the
best-ranked record of its work (by the query's own order) and carries in ``editions`` up to
:data:`EDITIONS` other records of that work matching the query, in the same order.  Elasticsearch does
it with ``collapse`` on :data:`FIELD`, then one search for the editions of the page's works (``top_hits`` per
work: what ``inner_hits`` gives, without its search per work); the embedded index over-fetches ranked hits and
groups them by :func:`work_hash`, read from a fast field without loading a document.

The total is then the number of works.  Up to :data:`EXACT_UP_TO` matching records it is exact on both
backends; above, both count with HyperLogLog (capped at the number of records) and
``SearchResults.total_is_estimate`` says "about".
"""
from __future__ import annotations

import hashlib

#: the keyword (Elasticsearch) naming a record's work; the embedded index keeps its :func:`work_hash`
FIELD, HASH_FIELD = "work", "work_hash"
#: other editions returned with each work
EDITIONS = 10
#: matching records up to which the number of works is counted exactly (about 5 ms of CPU at this size on the
#: embedded index, which reads each record's work hash; HyperLogLog above, about 1-3% off, never above the records)
EXACT_UP_TO = 1000


def work_of(doc: dict) -> str:
    """The work a search document belongs to: its work key, or the record alone when it has none."""
    return doc.get("work_key") or f"id:{doc['id']}"


def work_hash(doc: dict) -> int:
    """:func:`work_of` as a signed 64-bit integer (tantivy's fast fields hold numbers cheaply)."""
    digest = hashlib.blake2b(work_of(doc).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
