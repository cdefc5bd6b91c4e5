"""The pipeline: harvest → normalise → dedupe → index, each stage incremental.

Each stage reads what changed since its checkpoint (a counter in the
database) and moves the checkpoint only after its output is committed, so an
interrupted build resumes and a second build with nothing new does nothing.
"""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from consortium.config import Source
from storage.db import get_value, set_value
from harvester.harvest import harvest_source
from harvester.run import HarvestReport
from harvester.ops import OpsStore
from harvester.raw import RawRecord
from harvester.store import QuarantinedItem
from normaliser.authorities import AuthorityStore
from normaliser.links import LinkStore
from normaliser.quality import quality_report
from normaliser.batch import PRELOAD, normalise_batch, normalise_one  # noqa: F401 - normalise_one: bench, callers
from normaliser.store import QualityStore, Stored, paused_gc
from dedupe.build import DedupeReport, dedupe_changes
from dedupe.partition import Fanout, Partitions
from dedupe.features import MATCHER_VERSION
from dedupe.store import CLUSTER_SEQ
from index.documents import to_document
from index.names import add_variants, ids_of, names_of
from runtime.workerpool import cores, worker_pool

from .dedupe_parts import local_partitions
from .catalogue import DEDUPE_CHECKPOINT, INDEX_CHECKPOINT, MATCHER_KEY, NORMALISE_CHECKPOINT, Catalogue

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """The default progress callback: say nothing."""


# -- harvest -------------------------------------------------------------------

def select_sources(cat: Catalogue, ids: Iterable[str] = ()) -> list[Source]:
    ids = list(ids)
    if not ids:
        return [s for s in cat.sources.sources if s.enabled]
    known = cat.sources.by_id()
    missing = [i for i in ids if i not in known]
    if missing:
        raise KeyError(f"unknown source(s) {', '.join(missing)}; known: {', '.join(known)}")
    return [known[i] for i in ids]


def due_sources(cat: Catalogue, now: datetime | None = None) -> list[Source]:
    """Enabled sources whose schedule says a harvest is due (no schedule: always due)."""
    now = now or datetime.now(timezone.utc)
    last = cat.raw.last_runs()
    due = []
    for source in cat.sources.sources:
        if not source.enabled:
            continue
        run = last.get(source.id)
        if source.schedule is None or run is None or run["status"] != "ok":
            due.append(source)
            continue
        if now - run["started_at"] >= source.schedule:
            due.append(source)
    return due


def harvest(cat: Catalogue, sources: list[Source], full: bool = False,
            progress: Progress = quiet) -> list[HarvestReport]:
    """Harvest sources side by side (one thread each, up to the worker setting); paused members are skipped."""
    paused = OpsStore(cat.engine).paused()
    for source in (s for s in sources if s.id in paused):
        state = paused[source.id]
        progress(f"[{source.id}] skipped: paused by {state['changed_by'] or 'staff'} at {state['changed_at']}"
                 + (f" ({state['reason']})" if state["reason"] else "")
                 + f"; resume it on the staff page or with `unioncat sources resume {source.id}`")
    sources = [s for s in sources if s.id not in paused]
    def one(source: Source) -> HarvestReport:
        progress(f"[{source.id}] harvesting ({source.protocol}{', full' if full else ''})")

        def page(p) -> None:
            progress(f"[{source.id}] page {p.page}: {p.records} records so far "
                     f"(+{p.counts.added} ~{p.counts.updated} -{p.counts.deleted} "
                     f"!{p.counts.quarantined})")

        # Secrets (password_env) come from the environment, read here in the wiring, never in the library.
        report = harvest_source(source, cat.raw, full=full, progress=page, env=os.environ)
        c = report.counts
        progress(f"[{source.id}] {report.status}: {c.added} added, {c.updated} updated, {c.deleted} deleted, "
                 f"{c.unchanged} unchanged, {c.quarantined} quarantined in {report.duration:.1f}s"
                 + (f" — {report.error}" if report.error else ""))
        return report

    if not sources:
        return []
    workers = max(1, min(cat.settings.harvest_workers, len(sources)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="harvest") as pool:
        return list(pool.map(one, sources))


# -- normalise -------------------------------------------------------------------

@dataclass
class NormaliseReport:
    normalised: int = 0
    deleted: int = 0
    quarantined: int = 0
    seconds: float = 0.0


@dataclass
class _Batch:
    """Raw records changed since the checkpoint, taken together: normalised, committed, checkpointed."""

    live: list[RawRecord] = field(default_factory=list)
    gone: list[RawRecord] = field(default_factory=list)
    last: int = 0
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)


def _batches(cat: Catalogue, since: int, batch: int, limit: int | None) -> Iterator[_Batch]:
    """The changed raw records in batches of ``batch``; stop after about ``limit`` (whole batches)."""
    current = _Batch(last=since)
    for row in cat.raw.changed_since(since):
        (current.gone if row.record.deleted else current.live).append(row.record)
        current.seqs[(row.record.source, row.record.local_id)] = row.seq
        current.last = row.seq
        if len(current.live) + len(current.gone) >= batch:
            yield current
            if limit is not None and current.last - since >= limit:
                return
            current = _Batch(last=current.last)
    if current.live or current.gone:
        yield current


def _commit(cat: Catalogue, item: _Batch, results: list[tuple[Stored | None, str | None]],
            had_quarantine: set, report: NormaliseReport, progress: Progress) -> None:
    """Write one batch's records and quarantine, then move the checkpoint past it."""
    pending = [(None, r.source, r.local_id, item.seqs[(r.source, r.local_id)]) for r in item.gone]
    bad = []
    for raw, (data, reason) in zip(item.live, results):
        if data is None:
            bad.append(QuarantinedItem(raw.source, raw.local_id, reason, raw.payload, stage="normalise"))
        else:
            pending.append((data, raw.source, raw.local_id, item.seqs[(raw.source, raw.local_id)]))
            if (raw.source, raw.local_id) in had_quarantine:
                cat.raw.resolve_quarantine(raw.source, raw.local_id, "normalise")
    cat.records.put(pending)
    cat.raw.quarantine(bad)
    with cat.engine.begin() as conn:
        set_value(conn, NORMALISE_CHECKPOINT, item.last)
    report.deleted += len(item.gone)
    report.quarantined += len(bad)
    report.normalised += len(item.live) - len(bad)
    progress(f"normalised {report.normalised} records ({report.quarantined} quarantined)")


def _in_processes(batches: Iterable[_Batch], holdings: dict[str, tuple], workers: int,
                  commit: Callable[[_Batch, list], None]) -> None:
    """Normalise batches in worker processes, committing them in order as their results come back; a
    worker that dies stops the stage with :class:`runtime.workerpool.WorkerDied`, not a hang."""
    with worker_pool(workers, "normalise stage", preload=PRELOAD) as pool:
        in_flight: deque = deque()
        for item in batches:
            in_flight.append((item, pool.submit(normalise_batch, item.live, holdings)))
            if len(in_flight) > 2 * workers:
                done, future = in_flight.popleft()
                commit(done, future.result())
        while in_flight:
            done, future = in_flight.popleft()
            commit(done, future.result())


def normalise_stage(cat: Catalogue, progress: Progress = quiet, batch: int = 1000,
                    workers: int | None = None, limit: int | None = None) -> NormaliseReport:
    """Normalise every raw record changed since the checkpoint; quarantine failures.

    Parsing and mapping run in worker processes (one per core) when there is
    enough to do; the database is read and written only here, in order, and
    the checkpoint moves after each batch is committed.  ``limit`` stops
    after about that many records (whole batches): an rq build job does a
    bounded slice and queues the next one.
    """
    report = NormaliseReport()
    started = time.perf_counter()
    holdings = {s.id: s.holdings for s in cat.sources.sources}
    with cat.engine.connect() as conn:
        since = get_value(conn, NORMALISE_CHECKPOINT)
    had_quarantine = cat.raw.quarantined_keys("normalise")
    workers = workers if workers is not None else cores()

    def commit(item: _Batch, results: list[tuple[Stored | None, str | None]]) -> None:
        _commit(cat, item, results, had_quarantine, report, progress)

    batches = _batches(cat, since, batch, limit)
    if workers <= 1 or cat.raw.count_changed_since(since) < 4 * batch:
        for item in batches:
            commit(item, normalise_batch(item.live, holdings))
    else:
        _in_processes(batches, holdings, workers, commit)
    report.seconds = time.perf_counter() - started
    return report


# -- dedupe and index ---------------------------------------------------------------

def dedupe_stage(cat: Catalogue, progress: Progress = quiet, full: bool = False,
                 fanout: Fanout | None = None) -> DedupeReport:
    """Dedupe what changed; ``full`` scores every record again (cluster ids and overrides are kept).

    A catalogue whose features and keys were made by another version of the matcher is scored again in
    full, once: an upgrade that changes the rules must not leave old records keyed the old way.  With a
    ``fanout`` (the rq jobs of ``unioncat.jobs``) and ``dedupe_partitions`` > 1, staging (a full pass),
    scoring and merging are cut into that many partitions it runs (``dedupe_parts.dedupe_part`` runs one);
    otherwise a pass big enough runs them on this machine's worker processes
    (``dedupe_parts.local_partitions``).
    """
    with cat.engine.connect() as conn:
        since = 0 if full else get_value(conn, DEDUPE_CHECKPOINT)
        made_by = get_value(conn, MATCHER_KEY)
    if since and made_by != MATCHER_VERSION:
        progress(f"the matcher changed since the last build ({made_by or 'unversioned'} → {MATCHER_VERSION}): "
                 "every record is scored again")
        since = 0
    parts, workers = cat.settings.dedupe_partitions, cat.settings.dedupe_workers or cores()
    if fanout is not None and parts > 1:
        partitions: Partitions | None = Partitions(parts, fanout)
    else:
        partitions = local_partitions(cat, since, workers, progress)
    report = dedupe_changes(cat.records, cat.clusters, cat.members, since, max_block=cat.settings.max_block,
                            block_window=cat.settings.block_window, workers=workers,
                            source_order=cat.source_order(), progress=progress,
                            holdings_feeds=cat.holdings_feeds(), partitions=partitions)
    with cat.engine.begin() as conn:
        set_value(conn, DEDUPE_CHECKPOINT, report.last_seq)
        set_value(conn, MATCHER_KEY, MATCHER_VERSION)
    return report


@dataclass
class IndexReport:
    indexed: int = 0
    deleted: int = 0
    seconds: float = 0.0
    total: int = 0


#: Documents between two commits of an index stage that is not a rebuild (its checkpoint moves with each).
#: A commit is a new tantivy segment, merged again and again as more come, and a searcher reopened: committed
#: every 5,000 documents, a first build's index stage cost 19% more CPU at 200k member records, and its cost a
#: document grew with the catalogue (BENCHMARKS.md "commit15").  An interrupted build still goes on from its
#: last commit, losing at most this many documents' work (under a minute of it); tantivy holds the deletes of a
#: run that replaces documents until its commit (~1.2 KB each: 120 MB at most).
COMMIT_EVERY = 100_000


@dataclass
class _Pending:
    """What the index stage holds between two flushes, and how many documents since its last commit."""

    cat: Catalogue
    fresh: bool            # nothing indexed to replace (a first build, a rebuild): adds skip the deletes
    rebuilding: bool       # one commit, at the end
    commit_every: int
    last: int              # the seq of the last cluster taken: the checkpoint a commit moves to
    authorities: AuthorityStore
    docs: list[dict] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    records: list = field(default_factory=list)
    uncommitted: int = 0

    def flush(self, final: bool = False) -> None:
        """Send what is held to the index; commit, and move the checkpoint, every ``commit_every`` and at the end."""
        index = self.cat.index
        if self.gone:
            index.delete(self.gone)
        if self.docs:
            variants = self.authorities.variants(names_of(self.records))
            identified = self.authorities.identified(ids_of(self.records))
            for doc, rec in zip(self.docs, self.records):
                add_variants(doc, rec, variants, identified)
            index.add(self.docs, fresh=self.fresh)
        self.uncommitted += len(self.docs) + len(self.gone)
        if final or not self.rebuilding and self.uncommitted >= self.commit_every:
            index.commit()
            with self.cat.engine.begin() as conn:
                set_value(conn, INDEX_CHECKPOINT, self.last)
            self.uncommitted = 0
        self.docs, self.gone, self.records = [], [], []


def index_stage(cat: Catalogue, progress: Progress = quiet, reindex: bool = False,
                batch: int = 5000, commit_every: int = COMMIT_EVERY) -> IndexReport:
    """Send changed clusters to the search index ``batch`` at a time; ``reindex`` rebuilds it from all clusters.

    A rebuild commits once, at the end: readers keep the old index until the new one is complete
    (on Elasticsearch the alias moves then), and a rebuild that fails leaves the old one in place.
    Otherwise the stage commits, and moves its checkpoint, every ``commit_every`` documents and at the end.
    """
    report = IndexReport()
    started = time.perf_counter()
    index = cat.index
    with cat.engine.connect() as conn:
        since, upto = get_value(conn, INDEX_CHECKPOINT), get_value(conn, CLUSTER_SEQ)
    stale = getattr(index, "needs_rebuild", lambda: False)()
    empty = index.count() == 0
    rebuilding = reindex or stale or bool(since and empty and cat.clusters.count() > 0)
    if rebuilding:
        index.clear()
        since = 0
    # the walk gives each cluster once, so a first build or a rebuild has nothing indexed to replace
    pending = _Pending(cat, rebuilding or empty, rebuilding, commit_every, since, AuthorityStore(cat.engine))
    libraries = cat.libraries()
    try:
        with paused_gc():   # clusters, records and documents: many small objects, no cycles (see paused_gc)
            for seq, cluster_id, cluster in cat.clusters.changed_since(since, upto=upto):
                pending.last = seq
                if cluster is None:
                    pending.gone.append(cluster_id)
                    report.deleted += 1
                else:
                    pending.docs.append(to_document(cluster, libraries))
                    pending.records.append(cluster.record)
                    report.indexed += 1
                if len(pending.docs) + len(pending.gone) >= batch:
                    pending.flush()
                    progress(f"indexed {report.indexed} clusters")
            pending.flush(final=True)
    except BaseException:
        # what was added since the last commit must not reach a later commit in this process (a first build's
        # adds replace nothing: the next run, from the checkpoint, would add them again)
        index.rollback()
        raise
    report.total = index.count()
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class BuildReport:
    normalise: NormaliseReport = field(default_factory=NormaliseReport)
    dedupe: DedupeReport = field(default_factory=DedupeReport)
    index: IndexReport = field(default_factory=IndexReport)


def build(cat: Catalogue, progress: Progress = quiet, reindex: bool = False, full: bool = False) -> BuildReport:
    """Normalise, dedupe and index whatever changed since the last build."""
    out = BuildReport()
    progress("normalising changed records")
    out.normalise = normalise_stage(cat, progress)
    n = out.normalise
    progress(f"normalise: {n.normalised} records, {n.deleted} deletions, {n.quarantined} quarantined "
             f"in {n.seconds:.1f}s")
    progress("deduplicating")
    out.dedupe = dedupe_stage(cat, progress, full=full)
    d = out.dedupe
    progress(f"dedupe: {d.records_changed} records changed, {d.clusters_written} clusters written, "
             f"{d.clusters_deleted} deleted, {d.redirects} redirected, {len(d.refused_keys)} keys refused, "
             f"{len(d.split_keys)} oversized blocks split, {d.pairs_compared} pairs compared "
             f"({d.pairs_prefiltered} settled by the pre-filter)"
             + (f"; it finished a full pass interrupted while {d.resumed}" if d.resumed else ""))
    progress("indexing")
    # Changed authority records change the names every document is found by: rebuild the index then
    # (authority files are loaded now and then, not with every harvest).
    out.index = index_stage(cat, progress, reindex=reindex or full or d.authorities_changed > 0)
    i = out.index
    progress(f"index: {i.indexed} clusters indexed, {i.deleted} removed, {i.total} in the index "
             f"({i.seconds:.1f}s)")
    record_quality(cat, progress)
    return out


# -- data quality ------------------------------------------------------------------

def quality(cat: Catalogue, source: str | None = None) -> dict:
    """The data-quality report per source (see :mod:`normaliser.quality`), computed from the stores,
    with the holdings records (MFHD) whose bibliographic record never arrived."""
    known = [s.id for s in cat.sources.sources if source is None or s.id == source]
    orphans = LinkStore(cat.engine, cat.holdings_feeds()).orphans(source)
    report = quality_report(cat.records.iter_live(source), cat.raw.quarantine_summary(source), known,
                            orphans, AuthorityStore(cat.engine).problems(source))
    return {name: q.as_dict() for name, q in report.items()}


def record_quality(cat: Catalogue, progress: Progress = quiet) -> int:
    """Keep a quality report with each source's newest harvest run that changed something.

    Runs after the build, so the report describes the records that run
    brought; a run already reported is left alone.
    """
    store = QualityStore(cat.engine)
    done = store.reported_runs()
    kept = 0
    for source, run in cat.raw.last_runs().items():
        changed = run["added"] or run["updated"] or run["deleted"]
        if run["status"] not in ("ok", "held") or not changed or run["id"] in done:  # held: records taken
            continue
        data = quality(cat, source).get(source)
        if data is not None:
            store.save(source, run["id"], data)
            kept += 1
    if kept:
        progress(f"quality reports kept for {kept} source(s)")
    return kept
