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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.engine import Engine

from normaliser.store import max_record_id, paused_gc
from storage.jsoncodec import loads

from .evidence import matched_ids
from .members import member_ids, member_record_ids, member_rows

RecordKey = tuple[str, str]
#: Records clustered and committed together (whole components: a batch can be larger).
BATCH = 5000


@dataclass
class Rows:
    """A batch of member records: keys (only asked for records with a partner), previous clusters, removed ones."""

    keys: dict[RecordKey, list[str]]      # live records; an empty list when not asked for
    previous: dict[RecordKey, str]         # record → its cluster before this pass
    removed: list[RecordKey]               # deleted records still in dedupe_members
    classes: dict[RecordKey, int] = field(default_factory=dict)   # live records' feature classes (with keys)


def component_batches(engine: Engine, always: Iterable[tuple[RecordKey, RecordKey]],
                      size: int | None = None) -> Iterator[tuple[list[int], bool]]:
    """``(record ids, alone)`` batches of whole components, about ``size`` records each; ``alone`` batches
    hold records with no partner (they come last).  Memory: a few integers a record."""
    size = size or BATCH
    with paused_gc():   # millions of streamed rows: the collector's full passes over them found nothing (~2% of a pass)
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
    parent = array.array("i", range(max_record_id(engine) + 1))

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

    last_cluster, first = None, 0
    for rid, cid in member_ids(engine, by_cluster=True):
        if cid == last_cluster:
            union(first, rid)
        else:
            last_cluster, first = cid, rid
    for a, b in matched_ids(engine):
        union(a, b)
    always = list(always)
    known = member_record_ids(engine, [k for pair in always for k in pair])
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
    ids = array.array("i")
    for (rid,) in member_ids(engine, by_cluster=False):
        ids.append(rid)
    return np.frombuffer(ids, dtype=np.int32)


def batch_rows(engine: Engine, ids: list[int], with_keys: bool) -> Rows:
    """The member rows of a batch of record ids: keys and feature classes (``with_keys``), previous cluster,
    whether removed.  Equal keys (the copies of one book at many members) are decoded once and share one list,
    which nothing changes."""
    out = Rows({}, {}, [])
    decoded: dict[str, list[str]] = {}
    for row in member_rows(engine, sorted(ids), with_keys):
        key = (row[0], row[1])
        if row[3]:
            out.previous[key] = row[3]
        if row[2]:
            out.removed.append(key)
        elif with_keys:
            keys = decoded.get(row[4])
            out.keys[key] = keys if keys is not None else decoded.setdefault(row[4], loads(row[4]))
            if row[5] is not None:
                out.classes[key] = row[5]
        else:
            out.keys[key] = []
    return out
