"""Clustering after a pass: the records a change can reach, their groups, stable ids, committed.

Only the records linked to a changed record (by accepted pairs, always-merge
overrides, or a shared previous cluster) can end up in another cluster;
every other cluster stays exactly as it was (clustering is per connected
component and order-independent).  An incremental pass finds that scope by
looking stored pairs and clusters up record by record, so it reads what the
change touches, not the catalogue, and commits at once.  A full pass, or a
change of overrides (a removed override leaves no trace to follow), clusters
every record, a batch of whole components at a time (``components``), and
commits a few batches at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from itertools import islice

from sqlalchemy.engine import Connection

from normaliser.store import paused_gc

from .cluster import cluster
from .components import Rows, batch_rows, component_batches
from .evidence import EvidenceStore, Override
from .ids import Assignment, assign_ids, first_choice
from .score import MATCH
from .members import MemberStore, id_lookup
from .store import ClusterStore, created_order

RecordKey = tuple[str, str]
#: Batches of components a full pass commits together: neighbouring batches change rows on the same pages of
#: ``dedupe_members`` and its cluster index, each page then written once a commit (at 200k member records, 8
#: batches a commit wrote the ids for 2.0 CPU-s against 2.7 one at a time; 4 for 2.2).
COMMIT_EVERY = 8


@dataclass
class Outcome:
    rejected: int          # accepted pairs clustering did not apply
    deleted: int           # cluster ids retired
    redirects: int         # cluster ids redirected
    total_clusters: int
    scope: int             # records clustered again


@dataclass
class Scope:
    """The records clustered again, their keys, previous clusters and the pairs among them."""

    keys: dict[RecordKey, list[str]]
    previous: dict[RecordKey, str]
    previous_members: dict[str, set[RecordKey]]
    pairs: list[tuple[RecordKey, RecordKey, str, str, float]]
    records: set[RecordKey]


def recluster(evidence: EvidenceStore, clusters: ClusterStore, members: MemberStore,
              upserts: dict[RecordKey, list[str]], removed: Iterable[RecordKey], everything: bool,
              full: bool = False, progress: Callable[[str], None] | None = None) -> Outcome:
    """Cluster the records in scope, give the groups stable ids and commit the assignment.

    ``everything`` clusters every record, a batch of whole components at a time (see ``components``), each
    batch committed on its own; ``full``: every record was staged this pass (its keys are in ``dedupe_members``
    already, ``upserts`` is empty) and every cluster is merged again.
    """
    if everything:
        return _everything(evidence, members, upserts, full, progress)
    removed = set(removed)
    scope = _reachable(evidence, members, upserts, removed)
    outside = members.cluster_count() - len(scope.previous_members)
    groups, rejected = _groups(scope, evidence.overrides(), scope.records)
    assignment = assign_ids(groups, scope.previous, scope.previous_members,
                            created_order(clusters.engine, scope.previous_members),
                            id_exists=id_lookup(clusters.engine, (first_choice(g) for g in groups)))
    where = {m: cid for cid, ms in assignment.clusters.items() for m in ms}
    pending = set(assignment.changed) | {where[k] for k in upserts}
    moved = {m: cid for cid in assignment.changed for m in assignment.clusters[cid]}
    members.commit_assignment(upserts, removed, {**moved, **{k: where[k] for k in upserts}},
                              assignment.deleted, assignment.redirects, pending)
    return Outcome(rejected=len(rejected), deleted=len(assignment.deleted), redirects=len(assignment.redirects),
                   total_clusters=outside + len(assignment.clusters),
                   scope=len(scope.records))


def _groups(scope: Scope, overrides: list[Override], records: Collection[RecordKey]):
    """:func:`cluster` over the scope's pairs, with the overrides that touch ``records``."""
    edges = ((a, b, score, rule) for a, b, decision, rule, score in scope.pairs if decision == MATCH)
    vetoed = [(a, b) for a, b, decision, _, _ in scope.pairs if decision != MATCH]
    never = [(o.a, o.b) for o in overrides if o.kind == "never" and (o.a in records or o.b in records)]
    always = [(o.a, o.b) for o in overrides if o.kind == "always" and o.a in records]
    return cluster(scope.keys, edges, never=never, always=always, vetoed=vetoed)


def _everything(evidence: EvidenceStore, members: MemberStore, upserts: dict[RecordKey, list[str]],
                full: bool, progress: Callable[[str], None] | None) -> Outcome:
    """Every record clustered, a batch of whole components at a time, each batch's ids written with it and
    committed with the next few batches' (``COMMIT_EVERY``).

    Interrupted, a rerun stages the same records again and reclusters from the ids committed so far: a
    component already done keeps the groups and ids it was given, so the rerun ends where one pass would.
    """
    members.stage_keys(upserts)
    overrides = evidence.overrides()
    total = Outcome(0, 0, 0, 0, 0)
    batches = component_batches(members.engine, [(o.a, o.b) for o in overrides if o.kind == "always"])
    while group := list(islice(batches, COMMIT_EVERY)):
        with members.writing() as conn:
            for ids, alone in group:
                with paused_gc():   # a batch's rows, pairs and groups hold no cycles (see ``blocking.find_pairs``)
                    rows = batch_rows(members.engine, ids, with_keys=not alone)
                    assignment, rejected = _cluster_batch(evidence, members, rows, overrides, alone, conn)
                    pending = set(assignment.changed) | (set(assignment.clusters) if full else
                                                         {cid for cid, ms in assignment.clusters.items()
                                                          if any(m in upserts for m in ms)})
                    moved = {m: cid for cid, ms in assignment.clusters.items() for m in ms
                             if rows.previous.get(m) != cid}
                    members.commit_assignment({}, rows.removed, moved, assignment.deleted, assignment.redirects,
                                              pending, conn)
                _count(total, assignment, rejected, len(ids), progress)
    return total


def _count(total: Outcome, assignment: Assignment, rejected: list[tuple], records: int,
           progress: Callable[[str], None] | None) -> None:
    """Add a batch's outcome to the pass's (and say how far the pass got every 50,000 records)."""
    total.rejected += len(rejected)
    total.deleted += len(assignment.deleted)
    total.redirects += len(assignment.redirects)
    total.total_clusters += len(assignment.clusters)
    total.scope += records
    if progress and (total.scope == records or total.scope // 50_000 > (total.scope - records) // 50_000):
        progress(f"clustered {total.scope} records, a batch of components at a time")


def _cluster_batch(evidence: EvidenceStore, members: MemberStore, rows: Rows, overrides: list[Override],
                   alone: bool, conn: Connection) -> tuple[Assignment, list[tuple]]:
    """Groups and ids of a batch of whole components (records alone need no keys and have no pairs); new ids
    are looked up in ``conn``, the transaction the batches before it wrote theirs in."""
    previous_members: dict[str, set[RecordKey]] = {}
    for k, cid in rows.previous.items():
        previous_members.setdefault(cid, set()).add(k)
    # whole components: a pair reaching outside the batch (a veto between two of them) cannot matter
    pairs = [] if alone else evidence.pairs_within(rows.keys, classes=rows.classes)
    scope = Scope(rows.keys, rows.previous, previous_members, pairs, set(rows.keys) | set(rows.previous))
    groups, rejected = _groups(scope, overrides, scope.records)
    assignment = assign_ids(groups, rows.previous, previous_members, created_order(members.engine, previous_members),
                            id_exists=id_lookup(members.engine, (first_choice(g) for g in groups), conn))
    return assignment, rejected


def _reachable(evidence: EvidenceStore, members: MemberStore, upserts: dict[RecordKey, list[str]],
               removed: set[RecordKey]) -> Scope:
    """The records reachable from the changed ones, looked up a frontier at a time."""
    always: dict[RecordKey, set[RecordKey]] = {}
    for o in evidence.overrides():
        if o.kind == "always":
            always.setdefault(o.a, set()).add(o.b)
            always.setdefault(o.b, set()).add(o.a)
    seen: set[RecordKey] = set()
    previous: dict[RecordKey, str] = {}
    previous_members: dict[str, set[RecordKey]] = {}
    pairs: set = set()
    frontier = set(upserts) | removed
    while frontier:
        seen |= frontier
        found = evidence.pairs_of(frontier)
        pairs.update(found)
        nxt = {x for a, b, decision, _, _ in found if decision == MATCH for x in (a, b)}
        nxt.update(x for r in frontier for x in always.get(r, ()))
        now = {k: cid for k, cid in members.clusters_of(frontier).items() if cid}
        previous.update(now)
        fresh = {cid for cid in now.values() if cid not in previous_members}
        for cid, ms in members.members_of(fresh).items():
            previous_members[cid] = ms
            nxt |= ms
        frontier = nxt - seen
    keys = members.keys_of(seen - removed - set(upserts))
    keys.update((k, v) for k, v in upserts.items())
    return Scope(keys, previous, previous_members, list(pairs), seen)
