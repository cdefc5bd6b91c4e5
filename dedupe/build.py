"""The dedupe stage: re-score and re-cluster after records changed, write only what changed.

Features and blocking keys of changed records are stored a batch at a time
(``staging``: ``dedupe_features``, the indexed ``dedupe_keys``); only pairs with a changed
record are scored, a batch of blocks at a time, the members of each block
looked up by key; clustering then runs over the records a change can reach
(stored pairs and clusters looked up by record, see ``recluster``), and only
clusters whose membership changed, or that contain a changed record, are
merged again and written — so the index re-indexes only those.
"""
from __future__ import annotations

import logging
import time
from functools import partial
from collections.abc import Callable, Iterable
from dataclasses import replace

from normaliser.links import LinkStore
from normaliser.store import RECORD_SEQ, RecordStore, paused_gc

from storage.db import get_value, set_value

from . import fullpass
from .blocking import Emit, find_pairs
from .blockstore import BlockStore
from .classpairs import ClassPair
from .evidence import OVERRIDES_APPLIED, EvidenceStore, Pair
from .features import SIGNATURE, work_key
from .merge import merge_records
from .model import Cluster, DedupeReport
from .partition import Partitions, id_range, score_part
from .recluster import recluster
from .members import MemberStore
from .staging import Staged, stage_changes, stage_part
from .store import ClusterStore

log = logging.getLogger(__name__)
RecordKey = tuple[str, str]  # (source, local_id)


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
    block_window: int = 0,
    workers: int = 1,
    partitions: Partitions | None = None,
) -> DedupeReport:
    """Bring clusters up to date with every record changed after ``since_seq``.

    Four steps, each safe to interrupt: the changed records' features and blocking keys are stored a
    batch at a time (with every older pair touching them dropped); their blocks are scored a batch of
    blocks at a time and the kept pairs stored as they come; the new assignment (member keys, cluster
    ids, retired ids and the list of clusters to merge again) is committed at once (a full pass: a batch
    of whole components at a time, see ``recluster``); the merges then run in batches, each committed
    with its removal from the pending list.  An interrupted incremental pass is run again from its
    checkpoint.  ``since_seq`` 0 is a full pass: every block scored, every record clustered; it keeps its
    place (``fullpass``), and the next call, whatever its ``since_seq``, goes on from there.  A pass with no
    changed record still re-clusters when staff overrides changed.  ``holdings_feeds`` maps a holdings
    feed's source id to the source whose bibliographic records its MFHD belong to.  ``block_window`` > 0
    splits a block over ``max_block`` into title windows of that many records instead of refusing it;
    ``workers`` > 1 scores blocks in that many processes; ``partitions`` has its fanout stage (a full
    pass), score and merge in partitions (same outcome: ``partition``).
    """
    started = time.perf_counter()
    evidence = EvidenceStore(members.engine)
    place = _place(records, members, since_seq, progress)
    everything = place.under_way
    report = DedupeReport(last_seq=since_seq, resumed=place.describe() if place.begun else "")
    links = LinkStore(records.engine, holdings_feeds)
    merge = partial(_merge_pending, records, members, source_order, merge_batch, progress, links, partitions)
    report.clusters_written += merge()
    staged = stage_changes(records, members, since_seq, report, links, evidence, progress, place, partitions)
    overrides_version = evidence.overrides_version()
    overrides_changed = evidence.overrides_pending()
    if not everything and not report.records_changed and not overrides_changed:
        _remerge_holders(members, staged.holders)
        report.clusters_written += merge()
        return report
    caps = (max_block, block_window, workers)
    if everything:
        _score_everything(place, evidence, caps, report, progress, partitions)
    else:
        _score(set(staged.upserts), staged.stored, evidence, caps, report, progress, partitions)
        evidence.indexed()
    if place.phase <= fullpass.CLUSTERING:
        _recluster(evidence, clusters, members, staged, overrides_changed, overrides_version, place, report,
                   progress)
    _remerge_holders(members, staged.holders)
    report.clusters_written += merge()
    if everything:
        _finish(members, place, report)
    report.seconds = time.perf_counter() - started
    return report


def _finish(members: MemberStore, place: fullpass.FullPass, report: DedupeReport) -> None:
    """A full pass is done: no place kept any more, and the next pass takes the records after its ceiling."""
    with members.engine.begin() as conn:
        fullpass.finish(conn)
    report.last_seq = place.ceiling


def _place(records: RecordStore, members: MemberStore, since_seq: int,
           progress: Callable[[str], None] | None) -> fullpass.FullPass:
    """The full pass this call runs: one interrupted before (whatever was asked: an incremental pass over
    half-staged evidence would be wrong), a new one (``since_seq`` 0), or none (phase ``IDLE``)."""
    place = fullpass.current(members.engine)
    if place.under_way:
        message = f"a full dedupe pass was interrupted while {place.describe()}: going on from there"
        log.warning(message)
        if progress:
            progress(message)
        return place
    if since_seq:
        return place
    with records.engine.connect() as conn:
        return fullpass.begin(members.engine, get_value(conn, RECORD_SEQ))


def _recluster(evidence: EvidenceStore, clusters: ClusterStore, members: MemberStore, staged: Staged,
               overrides_changed: bool, overrides_version: int, place: fullpass.FullPass, report: DedupeReport,
               progress: Callable[[str], None] | None) -> None:
    """Cluster what the pass can reach (a full pass or changed overrides: every record, a batch of components
    at a time), then mark the overrides applied (and a full pass's merging begun) in one commit."""
    if progress:
        progress(f"clustering ({report.records_changed} records changed)")
    full = place.under_way
    outcome = recluster(evidence, clusters, members, staged.upserts, staged.removed, full or overrides_changed,
                        full=full, progress=progress)
    report.rejected_pairs, report.clusters_deleted, report.redirects, report.total_clusters, \
        report.records_reclustered = outcome.rejected, outcome.deleted, outcome.redirects, outcome.total_clusters, \
        outcome.scope
    with members.engine.begin() as conn:
        set_value(conn, OVERRIDES_APPLIED, overrides_version)
        if full:
            fullpass.phase(fullpass.MERGING)(conn)


def _remerge_holders(members: MemberStore, holders: set[RecordKey]) -> None:
    """Put the entries of bibliographic records that gained or lost holdings records on the merge list."""
    if not holders:
        return
    pending = {cid for cid in members.clusters_of(holders).values() if cid}
    if pending:
        members.commit_assignment({}, [], {}, [], {}, pending)


def _score_everything(place: fullpass.FullPass, evidence: EvidenceStore, caps: tuple[int, int, int],
                      report: DedupeReport, progress: Callable[[str], None] | None,
                      partitions: Partitions | None) -> None:
    """A full pass's scoring: the keys' key index built and the block walk planned (once), every block after
    the place an interrupted pass reached scored (pairs stored with the walk position, skipping those already
    stored after a resume), then the indexes the pass dropped built again."""
    if place.phase > fullpass.SCORING:
        return
    if place.phase < fullpass.SCORING:
        evidence.keyed()
        blocks = BlockStore(evidence.engine).plan_walk(then=fullpass.phase(fullpass.SCORING))
        if progress:
            progress(f"planned the walk over {blocks:,} blocks of two records or more")
        place = replace(place, phase=fullpass.SCORING, scored=0)
    again = place.scored > 0

    def emit(pairs: list[Pair | ClassPair], upto: int | None) -> None:
        evidence.add_pairs(pairs, again=again, then=fullpass.scored(upto))

    _score(None, 0, evidence, caps, report, progress, partitions, emit, place.scored)
    with evidence.engine.begin() as conn:
        fullpass.phase(fullpass.CLUSTERING)(conn)
    evidence.indexed()


def _score(changed: set[RecordKey] | None, upserted: int, evidence: EvidenceStore, caps: tuple[int, int, int],
           report: DedupeReport, progress: Callable[[str], None] | None, partitions: Partitions | None,
           emit: Emit | None = None, after: int | None = None) -> None:
    """Score the blocks of the changed records (None: every block, walked from ``after``), storing kept
    pairs as they come (``emit``: with a full pass's marks)."""
    if progress:
        progress("scoring every block" if changed is None else f"scoring the blocks of {len(changed)} records")
    if partitions is not None:
        found = partitions.score(changed, caps[0], caps[1])
    else:
        found = find_pairs(changed, BlockStore(evidence.engine), max_block=caps[0], progress=progress,
                           emit=emit or (lambda pairs, _upto: evidence.add_pairs(pairs)), window=caps[1],
                           workers=caps[2], after=after, by_class=True)
    report.refused_keys, report.split_keys = found.refused, found.split
    report.pairs_compared = found.compared
    report.pairs_prefiltered = found.prefiltered
    report.records_evaluated = upserted + found.candidates
    for key, n in sorted(found.refused.items(), key=lambda kv: -kv[1])[:20]:
        log.warning("block %r holds %d records: refused (a bad identifier or a generic title), not compared", key, n)
    for key, n in sorted(found.split.items(), key=lambda kv: -kv[1])[:20]:
        log.info("block %r holds %d records: compared in title windows of %d", key, n, caps[1])


def _merge_pending(records: RecordStore, members: MemberStore, source_order: dict[str, int] | None,
                   batch: int, progress: Callable[[str], None] | None, links: LinkStore,
                   partitions: Partitions | None = None, within: tuple[str | None, str | None] = (None, None)
                   ) -> int:
    """Merge the display record of every pending cluster (``within`` an id range), a batch at a time, with its
    members' MFHD; with ``partitions``, each partition of the ids is merged by a task of its own (none when
    no cluster is pending: a pass begins by finishing the merges an interrupted one left, usually none)."""
    if partitions is not None:
        return partitions.merge(batch) if members.pending(1) else 0
    written_total = 0
    while True:
        # The batch's records are acyclic trees (see paused_gc); the batch is its own function so that
        # everything it loaded is freed before the collector comes back on and would walk it.
        with paused_gc():
            written = _merge_batch(records, members, source_order, batch, links, within)
        if written is None:
            return written_total
        written_total += written
        if progress:
            progress(f"merged {written_total} catalogue entries")


def _merge_batch(records: RecordStore, members: MemberStore, source_order: dict[str, int] | None,
                 batch: int, links: LinkStore, within: tuple[str | None, str | None]) -> int | None:
    """Merge and write up to ``batch`` pending clusters; how many were written (None: nothing was pending)."""
    todo = members.pending(batch, within)
    if not todo:
        return None
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
    return len(written)


def run_part(task: str, args: dict, records: RecordStore, members: MemberStore,
             source_order: dict[str, int] | None, holdings_feeds: dict[str, str] | None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Run one partition of a pass (a :class:`Partitions` task: ``stage``, ``score`` or ``merge``), in any
    process.

    Safe to run again after it was killed: staging skips the records an earlier run of its range stored,
    scoring skips the pairs already stored, merging takes what is still pending in its range.  Its start and
    end are logged wherever it runs (a long pass's progress).
    """
    if task not in ("stage", "score", "merge"):
        raise ValueError(f"unknown dedupe partition task {task!r}")
    name = f"dedupe {task} partition {args['part'] + 1}/{args['parts']}"
    log.info("%s started", name)
    started = time.perf_counter()
    if task == "score":
        result = score_part(EvidenceStore(members.engine), args, progress)
    elif task == "stage":
        result = stage_part(records, members, LinkStore(records.engine, holdings_feeds), args, progress)
    else:
        links = LinkStore(records.engine, holdings_feeds)
        result = {"written": _merge_pending(records, members, source_order, args["batch"], progress, links,
                                            within=id_range(args["part"], args["parts"]))}
    counts = {k: v for k, v in result.items() if isinstance(v, int)}
    log.info("%s finished in %.1f s: %s", name, time.perf_counter() - started, counts)
    return result


def shared_keys(member_keys: Iterable[list[str]]) -> list[str]:
    """The match keys at least two members share: why they are one entry, shown to staff."""
    member_keys = list(member_keys)
    if len(member_keys) < 2:    # most entries have one member: nothing shared
        return []
    counts: dict[str, int] = {}
    for keys in member_keys:
        for k in set(keys):
            if not k.startswith(SIGNATURE):
                counts[k] = counts.get(k, 0) + 1
    return sorted(k for k, n in counts.items() if n > 1)
