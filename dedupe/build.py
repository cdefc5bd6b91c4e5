"""The dedupe stage: re-score and re-cluster after records changed, write only what changed.

Blocking keys of changed records are updated in ``dedupe_members`` and their
features in ``dedupe_features``; only pairs with a changed record are scored
(against the records of its blocks); clustering then runs over the stored
pairs of every record (cheap: no features, no full records), and only
clusters whose membership changed, or that contain a changed record, are
merged again and written — so the index re-indexes only those.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from normaliser.authorities import AuthorityStore
from normaliser.links import Link, LinkStore
from normaliser.model import Record
from normaliser.store import RecordStore

from storage.db import set_value

from .blocking import find_pairs
from .cluster import cluster
from .ids import assign_ids
from .evidence import OVERRIDES_APPLIED, EvidenceStore
from .features import SIGNATURE, Features, blocking_keys, record_features, work_key
from .merge import merge_records
from .model import Cluster
from .score import MATCH
from .store import ClusterStore, MemberStore, created_order, used_ids

log = logging.getLogger(__name__)
RecordKey = tuple[str, str]  # (source, local_id)


@dataclass
class DedupeReport:
    records_changed: int = 0
    clusters_written: int = 0
    clusters_deleted: int = 0
    redirects: int = 0
    total_clusters: int = 0
    refused_keys: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    pairs_compared: int = 0        # pairs scored this pass (only pairs with a changed record)
    records_evaluated: int = 0     # changed records plus the records of their blocks
    rejected_pairs: int = 0        # accepted pairs clustering did not apply (they would chain across a veto)
    records_reclustered: int = 0   # records whose cluster could change (linked to a changed record)
    holdings_changed: int = 0      # holdings records (MFHD) stored, changed or deleted this pass
    authorities_changed: int = 0   # authority records stored, changed or removed (the index expands names)
    seconds: float = 0.0


def dedupe_changes(
    records: RecordStore,
    clusters: ClusterStore,
    members: MemberStore,
    since_seq: int,
    max_block: int = 500,
    source_order: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
    merge_batch: int = 2000,
    holdings_feeds: dict[str, str] | None = None,
) -> DedupeReport:
    """Bring clusters up to date with every record changed after ``since_seq``.

    Three steps, each safe to interrupt: the changed records' features and
    their newly scored pairs are stored (pairs only with the records of the
    changed records' blocks); the new assignment (member keys, cluster ids,
    retired ids and the list of clusters to merge again) is committed at
    once; the merges then run in batches, each committed with its removal
    from the pending list, so memory stays bounded and a rerun finishes
    whatever was left.  A pass with no changed record still re-clusters when
    staff overrides changed.  ``holdings_feeds`` maps a holdings feed's source
    id to the source whose bibliographic records its MFHD belong to.
    """
    started = time.perf_counter()
    report = DedupeReport(last_seq=since_seq)
    evidence = EvidenceStore(members.engine)
    links = LinkStore(records.engine, holdings_feeds)
    report.clusters_written += _merge_pending(records, members, source_order, merge_batch, progress, links)
    changed, with_new_holdings = _changed_features(records, since_seq, report, links)
    overrides_version = evidence.overrides_version()
    overrides_changed = evidence.overrides_pending()
    if not changed and not overrides_changed:
        _remerge_holders(members, with_new_holdings)
        report.clusters_written += _merge_pending(records, members, source_order, merge_batch, progress, links)
        return report
    stored = members.load()
    previous = {k: cid for k, (_, cid) in stored.items() if cid}
    all_keys = {k: keys for k, (keys, _) in stored.items()}
    upserts, removed = _score_changes(changed, stored, all_keys, evidence, max_block, report, progress)
    del changed, stored
    if progress:
        progress(f"clustering {len(all_keys)} records ({report.records_changed} changed)")
    # Only the records linked to a changed record (by accepted pairs, or by a shared previous
    # cluster) can end up in another cluster; every other cluster stays exactly as it was.  A change
    # of overrides re-clusters everything (a removed override leaves no trace to follow).
    seeds = None if overrides_changed else set(upserts) | set(removed)
    _recluster(all_keys, evidence, seeds, previous, clusters, members, upserts, removed, report)
    with members.engine.begin() as conn:
        set_value(conn, OVERRIDES_APPLIED, overrides_version)
    _remerge_holders(members, with_new_holdings)
    report.clusters_written += _merge_pending(records, members, source_order, merge_batch, progress, links)
    report.seconds = time.perf_counter() - started
    return report


def _changed_features(records: RecordStore, since_seq: int, report: DedupeReport,
                      links: LinkStore) -> tuple[dict[RecordKey, Features | None], set[RecordKey]]:
    """The features of every bibliographic record changed after ``since_seq`` (None: deleted), and the
    bibliographic records whose holdings records (MFHD) changed.

    Only features are kept, never the records: holding 700,000 Records at once took 4 GB.  Holdings
    records are never matched: their 004 → 001 links are stored (a batch at a time) and the entries of
    the records they belong to are merged again.  Authority records are never matched either: their
    forms go to the authority store, which the index uses to expand names.
    """
    changed: dict[RecordKey, Features | None] = {}
    batch: list[Link] = []                  # a few strings per record, not the records (see Link)
    authority_batch: list[tuple[RecordKey, Record | None]] = []   # authority records and deletions
    targets: set[tuple[str, str]] = set()    # (bib source, 001) that holdings records point at
    answered: set[tuple[str, str]] = set()   # (source, 001) of bibliographic records changed in this pass
    authorities = AuthorityStore(records.engine)

    def flush() -> None:
        nonlocal batch, authority_batch
        targets.update(links.store(batch))
        report.authorities_changed += authorities.update(authority_batch)
        batch, authority_batch = [], []

    for seq, source, local_id, record in records.changed_since(since_seq, holdings_brief=True):
        key = (source, local_id)
        batch.append(Link.of(key, record))
        if record is None or record.kind == "authority":
            authority_batch.append((key, record))
        if record is not None and record.kind == "holdings":
            report.holdings_changed += 1
        elif record is None or record.kind == "bibliographic":
            changed[key] = None if record is None else record_features(record)
            if record is not None and record.control_number:
                answered.add((source, record.control_number))
        report.last_seq = seq
        if len(batch) >= 2000:
            flush()
    flush()
    report.records_changed = len(changed)
    # a bibliographic record changed in this pass is merged again anyway: look up only the others
    holders = links.bibs_for(targets - answered)
    return changed, {k for k in holders if k not in changed}


def _remerge_holders(members: MemberStore, holders: set[RecordKey]) -> None:
    """Put the entries of bibliographic records that gained or lost holdings records on the merge list."""
    if not holders:
        return
    pending = {cid for cid in members.clusters_of(holders).values() if cid}
    if pending:
        members.commit_assignment({}, [], {}, [], {}, pending)


def _score_changes(changed: dict[RecordKey, Features | None], stored: dict, all_keys: dict[RecordKey, list[str]],
                   evidence: EvidenceStore, max_block: int, report: DedupeReport,
                   progress: Callable[[str], None] | None) -> tuple[dict[RecordKey, list[str]], list[RecordKey]]:
    """Update ``all_keys`` with the changes, score their blocks and store the evidence.

    Returns the changed records' new blocking keys and the removed records.
    """
    upserts: dict[RecordKey, list[str]] = {}
    upserted_features: dict[RecordKey, Features] = {}
    removed = []
    for k, feats in changed.items():
        if feats is None:
            all_keys.pop(k, None)
            if k in stored:
                removed.append(k)
        else:
            upserts[k] = all_keys[k] = blocking_keys(feats)
            upserted_features[k] = feats
    if progress:
        progress(f"scoring {len(upserts)} changed records against their blocks")
    found = find_pairs(upserted_features, all_keys, evidence.features, max_block=max_block, progress=progress)
    report.refused_keys = found.refused
    report.pairs_compared = found.compared
    report.records_evaluated = len(upserted_features) + found.candidates
    for key, n in sorted(found.refused.items(), key=lambda kv: -kv[1])[:20]:
        log.warning("block %r holds %d records: refused (a bad identifier or a generic title), not compared", key, n)
    evidence.replace(upserted_features, removed, found.pairs)
    return upserts, removed


def _recluster(all_keys: dict[RecordKey, list[str]], evidence: EvidenceStore, seeds: set[RecordKey] | None,
               previous: dict[RecordKey, str], clusters: ClusterStore, members: MemberStore,
               upserts: dict[RecordKey, list[str]], removed: list[RecordKey], report: DedupeReport) -> None:
    """Cluster the records in scope, give the groups stable ids and commit the assignment at once."""
    previous_members: dict[str, set[RecordKey]] = {}
    for k, cid in previous.items():
        previous_members.setdefault(cid, set()).add(k)
    groups, rejected, scope = cluster_all(all_keys, evidence, seeds, previous, previous_members)
    report.rejected_pairs = len(rejected)
    prev_scope = {k: previous[k] for k in scope if k in previous}
    prev_members_scope = {cid: previous_members[cid] for cid in set(prev_scope.values())}
    taken = used_ids(clusters.engine)
    assignment = assign_ids(groups, prev_scope, prev_members_scope,
                            created_order(clusters.engine, prev_members_scope), id_exists=taken.__contains__)
    where = {m: cid for cid, ms in assignment.clusters.items() for m in ms}
    pending = set(assignment.changed) | {where[k] for k in upserts}
    moved = {m: cid for cid in assignment.changed for m in assignment.clusters[cid]}
    members.commit_assignment(upserts, removed, {**moved, **{k: where[k] for k in upserts}},
                              assignment.deleted, assignment.redirects, pending)
    report.clusters_deleted = len(assignment.deleted)
    report.redirects = len(assignment.redirects)
    report.total_clusters = len(previous_members) - len(prev_members_scope) + len(assignment.clusters)
    report.records_reclustered = len(scope)


def cluster_all(all_keys: dict[tuple[str, str], list[str]], evidence: EvidenceStore,
                seeds: set[tuple[str, str]] | None = None,
                previous: dict[tuple[str, str], str] | None = None,
                previous_members: dict[str, set[tuple[str, str]]] | None = None):
    """Cluster from the stored pairs and overrides (cheap: no features, no records).

    With ``seeds`` (the changed records), only the records reachable from
    them — through accepted pairs, always-merge overrides and shared previous
    clusters — are clustered again; returns (groups, rejected, that scope).
    Clustering is per connected component and order-independent, so the
    records outside keep exactly the clusters they had.
    """
    edges, vetoed = [], []
    for a, b, decision, rule, score in evidence.all_pairs():
        if decision == MATCH:
            edges.append((a, b, score, rule))
        else:
            vetoed.append((a, b))
    overrides = evidence.overrides()
    never = [(o.a, o.b) for o in overrides if o.kind == "never"]
    always = [(o.a, o.b) for o in overrides if o.kind == "always"]
    if seeds is None:
        scope = set(all_keys)
    else:
        scope = _reachable(seeds, [(a, b) for a, b, _, _ in edges] + always, previous or {}, previous_members or {})
        edges = [e for e in edges if e[0] in scope]
        vetoed = [p for p in vetoed if p[0] in scope or p[1] in scope]
        always = [p for p in always if p[0] in scope]
        all_keys = {k: v for k, v in all_keys.items() if k in scope}
    groups, rejected = cluster(all_keys, edges, never=never, always=always, vetoed=vetoed)
    return groups, rejected, scope


def _reachable(seeds, links, previous, previous_members) -> set[tuple[str, str]]:
    adjacent: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for a, b in links:
        adjacent.setdefault(a, []).append(b)
        adjacent.setdefault(b, []).append(a)
    seen: set[tuple[str, str]] = set()
    todo = list(seeds)
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        todo.extend(adjacent.get(r, ()))
        cid = previous.get(r)
        if cid:
            todo.extend(previous_members.get(cid, ()))
    return seen


def _merge_pending(records: RecordStore, members: MemberStore, source_order: dict[str, int] | None,
                   batch: int, progress: Callable[[str], None] | None, links: LinkStore) -> int:
    """Merge the display record of every pending cluster, a batch at a time, with its members' MFHD."""
    written_total = 0
    while True:
        todo = members.pending(batch)
        if not todo:
            return written_total
        loaded = records.get_many([m for ms in todo.values() for m in ms])
        attached_to = links.attached(loaded.values())
        written, emptied = [], []
        for cid, member_keys in todo.items():
            present = {m: keys for m, keys in member_keys.items() if m in loaded}
            if not present:
                emptied.append(cid)
                continue
            attached = {m: attached_to[m] for m in present if m in attached_to}
            merged = merge_records([loaded[m] for m in present], source_order, attached)
            written.append(Cluster(id=cid, record=merged, members=list(present),
                                   match_keys=shared_keys(present.values()), work_key=work_key(merged)))
        members.merged(written, emptied)
        written_total += len(written)
        if progress:
            progress(f"merged {written_total} catalogue entries")


def shared_keys(member_keys: Iterable[list[str]]) -> list[str]:
    """The match keys at least two members share: why they are one entry, shown to staff."""
    counts: dict[str, int] = {}
    for keys in member_keys:
        for k in set(keys):
            if not k.startswith(SIGNATURE):
                counts[k] = counts.get(k, 0) + 1
    return sorted(k for k, n in counts.items() if n > 1)
