"""The dedupe stage: re-cluster after records changed, write only what changed.

Keys of changed records are updated in ``dedupe_members``; clustering then
runs over the stored keys of every record (cheap: strings, no full records),
and only clusters whose membership changed, or that contain a changed
record, are merged again and written — so the index re-indexes only those.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from normaliser.model import Record
from normaliser.store import RecordStore

from .cluster import assign_ids, group_records
from .keys import match_keys
from .merge import merge_records
from .model import Cluster
from .store import ClusterStore, MemberStore, created_order, id_ever_used

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
) -> DedupeReport:
    """Bring clusters up to date with every record changed after ``since_seq``."""
    report = DedupeReport(last_seq=since_seq)
    changed: dict[tuple[str, str], Record | None] = {}
    for seq, source, local_id, record in records.changed_since(since_seq):
        changed[(source, local_id)] = record
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
    for k, record in changed.items():
        if record is None:
            all_keys.pop(k, None)
            if k in stored:
                removed.append(k)
        else:
            upserts[k] = all_keys[k] = match_keys(record)
    if progress:
        progress(f"clustering {len(all_keys)} records ({len(changed)} changed)")
    grouping = group_records(all_keys, max_block=max_block)
    report.refused_keys = grouping.refused_keys
    for key, n in sorted(grouping.refused_keys.items(), key=lambda kv: -kv[1])[:20]:
        log.warning("match key %r is carried by %d records: refused as a bad identifier or generic title", key, n)
    assignment = assign_ids(
        grouping.groups, previous, previous_members, created_order(clusters.engine, previous_members),
        id_exists=lambda cid: id_ever_used(clusters.engine, cid),
    )
    where = {m: cid for cid, ms in assignment.clusters.items() for m in ms}
    to_merge = set(assignment.changed) | {where[k] for k in upserts}
    need = [m for cid in to_merge for m in assignment.clusters[cid]]
    loaded = records.get_many(need)
    written: list[Cluster] = []
    for cid in sorted(to_merge):
        member_keys = assignment.clusters[cid]
        member_records = [loaded[m] for m in member_keys if m in loaded]
        if not member_records:
            continue
        record = merge_records(member_records, source_order)
        used = sorted({k for m in member_keys for k in grouping.keys_used.get(m, [])})
        written.append(Cluster(id=cid, record=record, members=list(member_keys), match_keys=used))
    clusters.save(written, deleted=assignment.deleted, redirects=assignment.redirects)
    new_assign = {m: cid for cid in to_merge for m in assignment.clusters[cid]}
    members.apply(upserts, removed, {**{k: where[k] for k in upserts}, **new_assign})
    report.clusters_written = len(written)
    report.clusters_deleted = len(assignment.deleted)
    report.redirects = len(assignment.redirects)
    report.total_clusters = len(assignment.clusters)
    return report
