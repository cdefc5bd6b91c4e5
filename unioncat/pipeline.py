"""The pipeline: harvest → normalise → dedupe → index, each stage incremental.

Each stage reads what changed since its checkpoint (a counter in the
database) and moves the checkpoint only after its output is committed, so an
interrupted build resumes and a second build with nothing new does nothing.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from consortium.config import Source, SourcesFile, load_sources, parse_sources
from storage.db import get_value, make_engine, set_value
from harvester.harvest import harvest_source
from harvester.run import HarvestReport
from harvester.ops import OpsStore
from harvester.raw import RawRecord
from harvester.store import QuarantinedItem, RawStore
from normaliser import normalise
from normaliser.errors import RecordError
from normaliser.quality import quality_report
from normaliser.store import QualityStore, RecordStore
from dedupe.build import DedupeReport, dedupe_changes
from dedupe.explain import accepted_pair_rules
from dedupe.store import ClusterStore, MemberStore
from index.documents import to_document
from index.backend import SearchBackend
from index.embedded import EmbeddedIndex, IndexSchemaError

from .schema import ensure_schema
from .settings import Settings

log = logging.getLogger(__name__)

NORMALISE_CHECKPOINT = "normalise_from_raw_seq"
DEDUPE_CHECKPOINT = "dedupe_from_record_seq"
INDEX_CHECKPOINT = "index_from_cluster_seq"

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


class Catalogue:
    """The opened stores and the consortium file: what every command works on."""

    def __init__(self, settings: Settings, sources: SourcesFile | None = None):
        self.settings = settings
        self.sources = sources if sources is not None else load_sources(settings.sources_path)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url)
        ensure_schema(self.engine)  # Alembic: creates a new database, upgrades an older one
        self.raw = RawStore(self.engine)
        self.records = RecordStore(self.engine)
        self.clusters = ClusterStore(self.engine)
        self.members = MemberStore(self.engine)
        self._index: SearchBackend | None = None

    @property
    def index(self) -> SearchBackend:
        """The search index; one built by an older schema is dropped and rebuilt from the clusters."""
        if self._index is None and self.settings.uses_elasticsearch:
            from index.elastic import ElasticsearchBackend
            self._index = ElasticsearchBackend(self.settings.search, index=self.settings.es_index,
                                               shards=self.settings.es_shards, replicas=self.settings.es_replicas)
        if self._index is None:
            try:
                self._index = EmbeddedIndex(self.settings.index_dir)
            except IndexSchemaError as exc:
                log.warning("%s — rebuilding the index from the stored clusters", exc)
                shutil.rmtree(self.settings.index_dir)
                with self.engine.begin() as conn:
                    set_value(conn, INDEX_CHECKPOINT, 0)
                self._index = EmbeddedIndex(self.settings.index_dir)
        return self._index

    def libraries(self) -> dict[str, tuple[str, str]]:
        """Member id → (display name, region), for documents and pages."""
        return {s.id: (s.name, s.region) for s in self.sources.sources}

    def source_order(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.sources.sources)}

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        self.engine.dispose()


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
            progress: Progress = _quiet) -> list[HarvestReport]:
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


def normalise_one(raw: RawRecord, holdings) -> tuple[str | None, str | None]:
    """``(record JSON, None)`` or ``(None, reason)`` for one raw record.

    Expected rejections (RecordError) give their reason; anything else is a
    bug, logged with its traceback and quarantined all the same, so one
    record never stops a run.
    """
    try:
        record = normalise(raw, holdings)
    except RecordError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bug, not bad data: keep the evidence and go on
        log.error("normalising %s/%s failed:\n%s", raw.source, raw.local_id, traceback.format_exc())
        return None, f"internal error: {exc!r}"
    return json.dumps(record.to_dict(), ensure_ascii=False), None


def _normalise_batch(batch: list[RawRecord], holdings: dict[str, tuple]) -> list[tuple[str | None, str | None]]:
    """Worker-process entry point: a batch in, JSON or reasons out (cheap to send back)."""
    return [normalise_one(raw, holdings.get(raw.source, ())) for raw in batch]


def normalise_stage(cat: Catalogue, progress: Progress = _quiet, batch: int = 1000,
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
    workers = workers if workers is not None else (os.cpu_count() or 1)

    def batches() -> Iterator[tuple[list[RawRecord], list[RawRecord], int, dict[tuple[str, str], int]]]:
        live: list[RawRecord] = []
        gone: list[RawRecord] = []
        seqs: dict[tuple[str, str], int] = {}
        last = since
        for row in cat.raw.changed_since(since):
            (gone if row.record.deleted else live).append(row.record)
            seqs[(row.record.source, row.record.local_id)] = row.seq
            last = row.seq
            if len(live) + len(gone) >= batch:
                yield live, gone, last, seqs
                live, gone, seqs = [], [], {}
                if limit is not None and last - since >= limit:
                    return
        if live or gone:
            yield live, gone, last, seqs

    def commit(live, gone, last, seqs, results) -> None:
        pending = [(None, r.source, r.local_id, seqs[(r.source, r.local_id)]) for r in gone]
        bad = []
        for raw, (data, reason) in zip(live, results):
            if data is None:
                bad.append(QuarantinedItem(raw.source, raw.local_id, reason, raw.payload, stage="normalise"))
            else:
                pending.append((data, raw.source, raw.local_id, seqs[(raw.source, raw.local_id)]))
                if (raw.source, raw.local_id) in had_quarantine:
                    cat.raw.resolve_quarantine(raw.source, raw.local_id, "normalise")
        cat.records.put(pending)
        cat.raw.quarantine(bad)
        with cat.engine.begin() as conn:
            set_value(conn, NORMALISE_CHECKPOINT, last)
        report.deleted += len(gone)
        report.quarantined += len(bad)
        report.normalised += len(live) - len(bad)
        progress(f"normalised {report.normalised} records ({report.quarantined} quarantined)")

    if workers <= 1 or cat.raw.count_changed_since(since) < 4 * batch:
        for live, gone, last, seqs in batches():
            commit(live, gone, last, seqs, _normalise_batch(live, holdings))
    else:
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            in_flight: deque = deque()
            for item in batches():
                in_flight.append((item, pool.submit(_normalise_batch, item[0], holdings)))
                if len(in_flight) > 2 * workers:
                    (live, gone, last, seqs), future = in_flight.popleft()
                    commit(live, gone, last, seqs, future.result())
            while in_flight:
                (live, gone, last, seqs), future = in_flight.popleft()
                commit(live, gone, last, seqs, future.result())
    report.seconds = time.perf_counter() - started
    return report


# -- dedupe and index ---------------------------------------------------------------

def dedupe_stage(cat: Catalogue, progress: Progress = _quiet, full: bool = False) -> DedupeReport:
    """Dedupe what changed; ``full`` scores every record again (cluster ids and overrides are kept)."""
    with cat.engine.connect() as conn:
        since = 0 if full else get_value(conn, DEDUPE_CHECKPOINT)
    report = dedupe_changes(cat.records, cat.clusters, cat.members, since, max_block=cat.settings.max_block,
                            source_order=cat.source_order(), progress=progress)
    with cat.engine.begin() as conn:
        set_value(conn, DEDUPE_CHECKPOINT, report.last_seq)
    return report


@dataclass
class IndexReport:
    indexed: int = 0
    deleted: int = 0
    seconds: float = 0.0
    total: int = 0


def index_stage(cat: Catalogue, progress: Progress = _quiet, reindex: bool = False,
                batch: int = 5000) -> IndexReport:
    """Send changed clusters to the search index; ``reindex`` rebuilds it from all clusters.

    A rebuild commits once, at the end: readers keep the old index until the new one is complete
    (on Elasticsearch the alias moves then), and a rebuild that fails leaves the old one in place.
    """
    report = IndexReport()
    started = time.perf_counter()
    index = cat.index
    with cat.engine.connect() as conn:
        since = get_value(conn, INDEX_CHECKPOINT)
    stale = getattr(index, "needs_rebuild", lambda: False)()
    rebuilding = reindex or stale or bool(since and index.count() == 0 and cat.clusters.count() > 0)
    if rebuilding:
        index.clear()
        since = 0
    libraries = cat.libraries()
    last = since
    docs: list[dict] = []
    gone: list[str] = []

    def flush(final: bool = False) -> None:
        nonlocal docs, gone
        if gone:
            index.delete(gone)
        if docs:
            index.add(docs)
        if rebuilding and not final:
            docs, gone = [], []
            return
        index.commit()
        with cat.engine.begin() as conn:
            set_value(conn, INDEX_CHECKPOINT, last)
        docs, gone = [], []

    for seq, cluster_id, cluster in cat.clusters.changed_since(since):
        last = seq
        if cluster is None:
            gone.append(cluster_id)
            report.deleted += 1
        else:
            docs.append(to_document(cluster, libraries))
            report.indexed += 1
        if len(docs) + len(gone) >= batch:
            flush()
            progress(f"indexed {report.indexed} clusters")
    flush(final=True)
    report.total = index.count()
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class BuildReport:
    normalise: NormaliseReport = field(default_factory=NormaliseReport)
    dedupe: DedupeReport = field(default_factory=DedupeReport)
    index: IndexReport = field(default_factory=IndexReport)


def build(cat: Catalogue, progress: Progress = _quiet, reindex: bool = False, full: bool = False) -> BuildReport:
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
             f"{d.clusters_deleted} deleted, {d.redirects} redirected, {len(d.refused_keys)} keys refused")
    progress("indexing")
    out.index = index_stage(cat, progress, reindex=reindex or full)
    i = out.index
    progress(f"index: {i.indexed} clusters indexed, {i.deleted} removed, {i.total} in the index "
             f"({i.seconds:.1f}s)")
    record_quality(cat, progress)
    return out


# -- data quality ------------------------------------------------------------------

def quality(cat: Catalogue, source: str | None = None) -> dict:
    """The data-quality report per source (see :mod:`normaliser.quality`), computed from the stores."""
    known = [s.id for s in cat.sources.sources if source is None or s.id == source]
    report = quality_report(cat.records.iter_live(source), cat.raw.quarantine_summary(source), known)
    return {name: q.as_dict() for name, q in report.items()}


def record_quality(cat: Catalogue, progress: Progress = _quiet) -> int:
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



# -- dedupe evaluation ----------------------------------------------------------------

@dataclass
class ClusteredFiles:
    """Member keys and clusters of MARC files run through harvest → normalise → dedupe."""

    members: dict[tuple[str, str], tuple[list[str], str | None]]  # (source, 001) → (match keys, cluster id)
    refused_keys: set[str]
    quarantined: int
    pair_rules: dict[frozenset, str] = field(default_factory=dict)  # {a, b} → rule that accepted the pair


def file_sources(paths: Iterable[os.PathLike | str]) -> SourcesFile:
    """A consortium of one ``file`` member per MARC file, its id the file name without extension."""
    entries = []
    for p in paths:
        path = Path(p).resolve()
        entries.append({"id": path.stem, "name": path.stem, "region": "evaluation", "protocol": "file",
                        "path": str(path)})
    return parse_sources({"consortium": {"name": "dedupe evaluation"}, "sources": entries}, "<files>")


def cluster_files(paths: Iterable[os.PathLike | str], data_dir: os.PathLike | str,
                  progress: Progress = _quiet) -> ClusteredFiles:
    """Harvest, normalise and dedupe MARC files in a fresh data folder; no index.

    Raises ``ConfigError`` for a file name that is not a valid source id (or
    two files with one name) and ``RuntimeError`` when a file cannot be read.
    """
    sources = file_sources(paths)
    data_dir = Path(data_dir)
    cat = Catalogue(Settings(data_dir=data_dir, sources_path=data_dir / "sources.yaml"), sources)
    try:
        reports = harvest(cat, list(sources.sources), full=True, progress=progress)
        failed = [r for r in reports if r.status != "ok"]
        if failed:
            raise RuntimeError("; ".join(f"{r.source}: {r.error}" for r in failed))
        normalised = normalise_stage(cat, progress)
        deduped = dedupe_stage(cat, progress)
        return ClusteredFiles(members=cat.members.load(), refused_keys=set(deduped.refused_keys),
                              quarantined=sum(r.counts.quarantined for r in reports) + normalised.quarantined,
                              pair_rules=accepted_pair_rules(cat.engine))
    finally:
        cat.close()
