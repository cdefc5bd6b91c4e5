"""Staging: the features and blocking keys of changed records stored for a dedupe pass, with their links.

The first step of every pass (``build.dedupe_changes``): each changed bibliographic record's features and
blocking keys go to ``dedupe_features`` / ``dedupe_keys`` (``evidence``), a full pass's match keys to
``dedupe_members`` too; holdings records' 004 → 001 links to ``normaliser.links``; authority records' forms
to ``normaliser.authorities``.  A batch of records at a time, written when the batch is full, so a pass
holds nothing per record.  A full pass's staging can be cut into ``seq`` ranges that workers stage side by side
(``partition``, :func:`stage_part`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, takewhile

from sqlalchemy.engine import Connection

from normaliser.authorities import AuthorityStore
from normaliser.links import Link, LinkStore
from normaliser.model import Record
from normaliser.store import RecordStore, paused_gc

from . import fullpass
from .evidence import EvidenceStore
from .features import Features, blocking_keys, record_features
from .members import MemberStore
from .model import DedupeReport
from .partition import Partitions

RecordKey = tuple[str, str]  # (source, local_id)


@dataclass
class Staged:
    """What staging found: the changed records' keys (an incremental pass only), deletions, new holdings."""

    upserts: dict[RecordKey, list[str]]    # empty in a full pass: the keys went to dedupe_members as staged
    removed: set[RecordKey]                # empty in a full pass: records.deleted tells them
    holders: set[RecordKey]                # records whose holdings records (MFHD) changed (none in a full pass)
    stored: int = 0                        # bibliographic records stored


def stage_changes(records: RecordStore, members: MemberStore, since_seq: int, report: DedupeReport,
                  links: LinkStore, evidence: EvidenceStore, progress: Callable[[str], None] | None,
                  place: fullpass.FullPass, partitions: Partitions | None = None) -> Staged:
    """Store the features and blocking keys of every bibliographic record changed after ``since_seq``.

    A full pass (``place`` not idle) stages the records up to its ceiling, after those it staged before it
    was interrupted (nothing once it is past staging), each batch committed with its mark.  A new one
    empties the stored features, keys and pairs first (see
    ``EvidenceStore.restart``) and stores each batch's match keys (signature included) in ``dedupe_members``
    too, keeping their clusters: it holds nothing per record (holding every record's keys took ~1.3 KB a
    record), and clustering reads them back a batch of components at a time.  An incremental pass returns
    the changed records' keys for its one commit.  Features are stored a batch at a time and dropped.
    Holdings records are never matched: their 004 → 001 links are stored (a batch at a time) and the
    entries of the records they belong to are merged again (in a full pass every entry is).  Authority
    records are never matched either: their forms go to the authority store, which the index uses to
    expand names.  With ``partitions``, a full pass's staging is cut into ranges of ``seq`` that any worker
    stages (:func:`stage_part`); the pass's staged mark moves once, when they are all done.
    """
    full = place.under_way
    changes: Iterator[tuple] | None = None     # none to stage: a full pass past its staging
    if not full:
        changes = records.changed_since(since_seq, holdings_brief=True)
    elif place.phase == fullpass.STAGING:
        if not place.staged and not (partitions and place.restarted):    # partitions skip what is stored
            evidence.restart(then=fullpass.restarted)
        with evidence.engine.begin() as conn:    # fences off the partitions of any earlier attempt
            epoch = fullpass.new_epoch(conn)
        if partitions is not None:
            return _staged_by(partitions, evidence, place, epoch, report)
        changes = _changed_between(records, place.staged, place.ceiling)
    stager = Stager(records, members, full, report, links, evidence, progress, fullpass.staged if full else None)
    if changes is not None:
        in_batches(changes, stager.take, stager.flush)
    return stager.finish()


def _staged_by(partitions: Partitions, evidence: EvidenceStore, place: fullpass.FullPass, epoch: int,
               report: DedupeReport) -> Staged:
    """A full pass's staging run by ``partitions`` as attempt ``epoch``; then its staged mark, and the counts."""
    counts = partitions.stage(place.staged, place.ceiling, epoch)
    with evidence.engine.begin() as conn:
        fullpass.staged(place.ceiling)(conn)
    report.records_changed += counts["records_changed"]
    report.holdings_changed += counts["holdings_changed"]
    report.authorities_changed += counts["authorities_changed"]
    report.last_seq = place.ceiling
    return Staged({}, set(), set(), counts["stored"])


def stage_part(records: RecordStore, members: MemberStore, links: LinkStore, args: dict,
               progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Stage one ``seq`` range of a full pass (a ``partition`` task), in any process, a batch at a time,
    each batch fenced by the attempt's epoch (``fullpass.fenced``: a partition of a replaced attempt stops).
    A range an earlier run began (a re-run) skips the records it stored (``EvidenceStore.stage``'s ``again``)
    and ends where one run ends; two runs begun at once collide on a record's features and one fails, to be
    run again.  Its counts (``partition.STAGE_COUNTS``)."""
    evidence = EvidenceStore(members.engine)
    fence = fullpass.fenced(args["epoch"])
    again = evidence.staged_between(args["after"], args["upto"])
    report = DedupeReport(last_seq=args["after"])
    stager = Stager(records, members, True, report, links, evidence, progress, fence=fence, again=again)
    in_batches(_changed_between(records, args["after"], args["upto"]), stager.take, stager.flush)
    staged = stager.finish()
    return {"records_changed": report.records_changed, "stored": staged.stored,
            "holdings_changed": report.holdings_changed, "authorities_changed": report.authorities_changed}


def _changed_between(records: RecordStore, after: int, upto: int) -> Iterator[tuple]:
    """The changes of ``seq`` in ``(after, upto]``, in order: a full pass's (up to its ceiling) or a partition's."""
    return takewhile(lambda change: change[0] <= upto, records.changed_since(after, holdings_brief=True))


#: Staging says how far it got every this many records (a full pass at 5M stages for about an hour).
STAGED_EVERY = 100_000


class Stager:
    """One staging pass's batch: links, authority records, features and keys, written at each ``flush``.

    ``mark`` gives, for the last ``seq`` of a batch, the mark its transaction writes (a full pass's,
    ``fullpass.staged``).  ``fence``: a full pass's staging partition — each batch's writes of features, keys
    and match keys are fenced by it (``fullpass.fenced``; links and authority forms, which the normaliser's
    output alone decides, come out the same from any run and are not); ``again``: records whose features are
    stored already are skipped (the partition's re-run)."""

    def __init__(self, records: RecordStore, members: MemberStore, full: bool, report: DedupeReport,
                 links: LinkStore, evidence: EvidenceStore, progress: Callable[[str], None] | None = None,
                 mark: Callable[[int], Callable[[Connection], None]] | None = None,
                 fence: Callable[[Connection], None] | None = None, again: bool = False):
        self.full, self.members, self.report, self.links, self.evidence = full, members, report, links, evidence
        self.progress, self.taken, self.mark, self.fence, self.again = progress, 0, mark, fence, again
        self.staged = Staged({}, set(), set())
        self.batch: list[Link] = []             # a few strings per record, not the records (see Link)
        self.authority_batch: list[tuple[RecordKey, Record | None]] = []   # authority records and deletions
        self.features: dict[RecordKey, Features | None] = {}
        self.keys: dict[RecordKey, list[str]] = {}
        self.targets: set[tuple[str, str]] = set()    # (bib source, 001) that holdings records point at
        self.answered: set[tuple[str, str]] = set()   # (source, 001) of bibliographic records changed in this pass
        self.authorities = AuthorityStore(records.engine)

    def flush(self) -> None:
        found = self.links.store(self.batch)
        if not self.full:
            self.targets.update(found)
        self.report.authorities_changed += self.authorities.update(self.authority_batch)
        if self.full:    # before the evidence: its transaction carries the mark a resumed pass starts after
            self.members.stage_keys(self.keys, then=self.fence)
        else:
            self.staged.upserts.update(self.keys)
        self.evidence.stage({k: f for k, f in self.features.items() if f is not None}, self.keys,
                            [k for k, f in self.features.items() if f is None], fresh=self.full,
                            then=self.fence or (self.mark(self.report.last_seq) if self.mark else None),
                            again=self.again)
        before, self.taken = self.taken, self.taken + len(self.batch)
        self.batch, self.authority_batch, self.features, self.keys = [], [], {}, {}
        if self.progress and before // STAGED_EVERY != self.taken // STAGED_EVERY:
            self.progress(f"staged {self.taken:,} changed records (features and blocking keys)")

    def take(self, seq: int, source: str, local_id: str, record: Record | None) -> None:
        key, staged = (source, local_id), self.staged
        self.batch.append(Link.of(key, record))
        if record is None or record.kind == "authority":
            self.authority_batch.append((key, record))
        if record is not None and record.kind == "holdings":
            self.report.holdings_changed += 1
        elif record is None or record.kind == "bibliographic":
            feats = self.features[key] = None if record is None else record_features(record)
            if feats is None:
                self.keys.pop(key, None)
                staged.upserts.pop(key, None)
                self.report.records_changed += 1
                if not self.full:
                    staged.removed.add(key)
            else:
                self.keys[key] = blocking_keys(feats)
                staged.removed.discard(key)
                staged.stored += 1
            if record is not None and record.control_number and not self.full:
                self.answered.add((source, record.control_number))
        self.report.last_seq = seq

    def finish(self) -> Staged:
        staged = self.staged
        if self.full:
            self.report.records_changed += staged.stored
            return staged
        self.report.records_changed = len(staged.upserts) + len(staged.removed)
        # a bibliographic record changed in this pass is merged again anyway: look up only the others
        staged.holders = {k for k in self.links.bibs_for(self.targets - self.answered)
                          if k not in staged.upserts and k not in staged.removed}
        return staged


def in_batches(changes: Iterator[tuple], take: Callable[..., None], flush: Callable[[], None],
               size: int = 2000) -> None:
    """``take`` each change, and ``flush`` after every ``size`` of them, the collector held over each batch
    (a batch of records is acyclic trees: see ``paused_gc``)."""
    while True:
        with paused_gc():
            taken = 0
            for change in islice(changes, size):
                take(*change)
                taken += 1
            flush()
        if taken < size:
            return
