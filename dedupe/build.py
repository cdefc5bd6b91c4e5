"""The dedupe stage: re-cluster after records changed, write only what changed.

Keys of changed records are updated in ``dedupe_members``; clustering then
runs over the stored keys of every record (cheap: strings, no full records),
and only clusters whose membership changed, or that contain a changed
record, are merged again and written — so the index re-indexes only those.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from normaliser.store import RecordStore

from .cluster import assign_ids, group_records
from .keys import SIGNATURE, match_keys
from .merge import merge_records
from .model import Cluster
from .store import ClusterStore, MemberStore, created_order, used_ids

log = logging.getLogger(__name__)


@dataclass
class DedupeReport:
    records_changed: int = 0
    clusters_written: int = 0
    clusters_deleted: int = 0
    redirects: int = 0
    total_clusters: int = 0
    refused_keys: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0


def dedupe_changes(
    records: RecordStore,
    clusters: ClusterStore,
    members: MemberStore,
    since_seq: int,
    max_block: int = 500,
    source_order: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
    merge_batch: int = 2000,
) -> DedupeReport:
    """Bring clusters up to date with every record changed after ``since_seq``.

    Two steps, each safe to interrupt: the new assignment (member keys,
    cluster ids, retired ids and the list of clusters to merge again) is
    committed at once; the merges then run in batches, each committed with
    its removal from the pending list, so memory stays bounded and a rerun
    finishes whatever was left.
    """
    report = DedupeReport(last_seq=since_seq)
    report.clusters_written += _merge_pending(records, members, source_order, merge_batch, progress)
    # Only the keys of changed records are kept: holding 700,000 Records at once took 4 GB.
    changed: dict[tuple[str, str], list[str] | None] = {}
    for seq, source, local_id, record in records.changed_since(since_seq):
        changed[(source, local_id)] = None if record is None else match_keys(record)
        report.last_seq = seq
    report.records_changed = len(changed)
    if not changed:
        return report
    stored = members.load()
    previous = {k: cid for k, (_, cid) in stored.items() if cid}
    previous_members: dict[str, set[tuple[str, str]]] = {}
    for k, cid in previous.items():
        previous_members.setdefault(cid, set()).add(k)
    all_keys = {k: keys for k, (keys, _) in stored.items()}
    upserts: dict[tuple[str, str], list[str]] = {}
    removed = []
    for k, keys in changed.items():
        if keys is None:
            all_keys.pop(k, None)
            if k in stored:
                removed.append(k)
        else:
            upserts[k] = all_keys[k] = keys
    del changed, stored
    if progress:
        progress(f"clustering {len(all_keys)} records ({report.records_changed} changed)")
    grouping = group_records(all_keys, max_block=max_block)
    report.refused_keys = grouping.refused_keys
    for key, n in sorted(grouping.refused_keys.items(), key=lambda kv: -kv[1])[:20]:
        log.warning("match key %r is carried by %d records: refused as a bad identifier or generic title", key, n)
    taken = used_ids(clusters.engine)
    assignment = assign_ids(grouping.groups, previous, previous_members,
                            created_order(clusters.engine, previous_members), id_exists=taken.__contains__)
    where = {m: cid for cid, ms in assignment.clusters.items() for m in ms}
    pending = set(assignment.changed) | {where[k] for k in upserts}
    moved = {m: cid for cid in assignment.changed for m in assignment.clusters[cid]}
    members.commit_assignment(upserts, removed, {**moved, **{k: where[k] for k in upserts}},
                              assignment.deleted, assignment.redirects, pending)
    report.clusters_deleted = len(assignment.deleted)
    report.redirects = len(assignment.redirects)
    report.total_clusters = len(assignment.clusters)
    report.clusters_written += _merge_pending(records, members, source_order, merge_batch, progress)
    return report


def _merge_pending(records: RecordStore, members: MemberStore, source_order: dict[str, int] | None,
                   batch: int, progress: Callable[[str], None] | None) -> int:
    """Merge the display record of every pending cluster, a batch at a time."""
    written_total = 0
    while True:
        todo = members.pending(batch)
        if not todo:
            return written_total
        loaded = records.get_many([m for ms in todo.values() for m in ms])
        written, emptied = [], []
        for cid, member_keys in todo.items():
            present = {m: keys for m, keys in member_keys.items() if m in loaded}
            if not present:
                emptied.append(cid)
                continue
            written.append(Cluster(id=cid, record=merge_records([loaded[m] for m in present], source_order),
                                   members=list(present), match_keys=shared_keys(present.values())))
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
