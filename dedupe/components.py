"""The connected components of a full clustering pass, found from streamed reads and handed out in batches.

A record can only end up with, or keep the cluster id of, a record it reaches through accepted pairs,
staff always-merge pairs or a shared previous cluster: clustering (``cluster.py``) and id assignment
(``ids.py``) of one such component never look outside it.  So a full pass need not hold every record's
keys, every pair and every cluster at once: it unions record ids (``records.id``, an integer every member
record has) over streamed rows of ``dedupe_members`` (in cluster order) and of the accepted pairs, in
a compact array, then clusters a batch of whole components at a time.  Most records are alone in their
component (no accepted pair, no previous cluster-mate): they come last, in batches of their own that skip
the keys and pairs lookups they do not need.
"""
from __future__ import annotations

import array
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from normaliser.store import records

from .blockstore import chunks, record_in
from .evidence import dedupe_pairs
from .score import MATCH
from .store import dedupe_members

RecordKey = tuple[str, str]
#: Rows a streamed read fetches at a time.
STREAM = 10_000
#: Records clustered and committed together (whole components: a batch can be larger).
BATCH = 5000


@dataclass
class Rows:
    """A batch of member records: keys (only asked for records with a partner), previous clusters, removed ones."""

    keys: dict[RecordKey, list[str]]      # live records; an empty list when not asked for
    previous: dict[RecordKey, str]         # record → its cluster before this pass
    removed: list[RecordKey]               # deleted records still in dedupe_members


def component_batches(engine: Engine, always: Iterable[tuple[RecordKey, RecordKey]],
                      size: int | None = None) -> Iterator[tuple[list[int], bool]]:
    """``(record ids, alone)`` batches of whole components, about ``size`` records each; ``alone`` batches
    hold records with no partner (they come last).  Memory: a few integers a record."""
    size = size or BATCH
    parent = _union_find(engine, always)
    ids = _member_ids(engine)
    roots = _roots(parent)[ids]
    del parent
    count = np.bincount(roots)
    alone = count[roots] == 1
    del count
    grouped, singles = ids[~alone], ids[alone]
    order = np.argsort(roots[~alone], kind="stable")
    grouped, roots = grouped[order], roots[~alone][order]
    del order, alone, ids
    start = 0
    while start < len(grouped):
        end = min(start + size, len(grouped))
        while end < len(grouped) and roots[end] == roots[end - 1]:   # never cut a component
            end += 1
        yield grouped[start:end].tolist(), False
        start = end
    for i in range(0, len(singles), size):
        yield singles[i:i + size].tolist(), True


def _union_find(engine: Engine, always: Iterable[tuple[RecordKey, RecordKey]]) -> array.array:
    """Each record id's parent after joining previous cluster-mates, accepted pairs and always-merge pairs."""
    with engine.connect() as conn:
        top = conn.execute(select(func.max(records.c.id))).scalar() or 0
    parent = array.array("i", range(top + 1))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    m, r = dedupe_members.c, records.c
    joined = dedupe_members.join(records, and_(r.source == m.source, r.local_id == m.local_id))
    last_cluster, first = None, 0
    for rid, cid in _stream(engine, select(r.id, m.cluster_id).select_from(joined)
                            .where(m.cluster_id.is_not(None)).order_by(m.cluster_id)):
        if cid == last_cluster:
            union(first, rid)
        else:
            last_cluster, first = cid, rid
    ra, rb = aliased(records), aliased(records)
    p = dedupe_pairs.c
    pairs = (select(ra.c.id, rb.c.id).select_from(dedupe_pairs)
             .join(ra, and_(ra.c.source == p.a_source, ra.c.local_id == p.a_id))
             .join(rb, and_(rb.c.source == p.b_source, rb.c.local_id == p.b_id)).where(p.decision == MATCH))
    for a, b in _stream(engine, pairs):
        union(a, b)
    always = list(always)
    known = record_ids(engine, [k for pair in always for k in pair])
    for a, b in always:
        if a in known and b in known:
            union(known[a], known[b])
    return parent


def _roots(parent: array.array) -> np.ndarray:
    """Every id's root, by pointer jumping over the whole array at once."""
    roots = np.frombuffer(parent, dtype=np.int32).copy()
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            return roots
        roots = jumped


def _member_ids(engine: Engine) -> np.ndarray:
    """The record id of every row of ``dedupe_members`` (records in the order of their source and id)."""
    m, r = dedupe_members.c, records.c
    joined = dedupe_members.join(records, and_(r.source == m.source, r.local_id == m.local_id))
    ids = array.array("i")
    for (rid,) in _stream(engine, select(r.id).select_from(joined).order_by(m.source, m.local_id)):
        ids.append(rid)
    return np.frombuffer(ids, dtype=np.int32)


def _stream(engine: Engine, query) -> Iterator[tuple]:
    with engine.connect() as conn:
        for part in conn.execution_options(stream_results=True, yield_per=STREAM).execute(query).partitions():
            yield from part


def record_ids(engine: Engine, keys: Iterable[RecordKey]) -> dict[RecordKey, int]:
    """The ``records.id`` of each of ``keys`` (the few always-merge pairs)."""
    out: dict[RecordKey, int] = {}
    with engine.connect() as conn:
        for where in record_in(records.c.source, records.c.local_id, keys):
            out.update(((s, l), i) for i, s, l in conn.execute(
                select(records.c.id, records.c.source, records.c.local_id).where(where)))
    return out


def batch_rows(engine: Engine, ids: list[int], with_keys: bool) -> Rows:
    """The member rows of a batch of record ids: keys (``with_keys``), previous cluster, whether removed."""
    m, r = dedupe_members.c, records.c
    joined = dedupe_members.join(records, and_(r.source == m.source, r.local_id == m.local_id))
    cols = [r.source, r.local_id, r.deleted, m.cluster_id] + ([m.match_keys] if with_keys else [])
    out = Rows({}, {}, [])
    with engine.connect() as conn:
        for chunk in chunks(sorted(ids)):
            for row in conn.execute(select(*cols).select_from(joined).where(r.id.in_(chunk))):
                key = (row[0], row[1])
                if row[3]:
                    out.previous[key] = row[3]
                if row[2]:
                    out.removed.append(key)
                else:
                    out.keys[key] = json.loads(row[4]) if with_keys else []
    return out
