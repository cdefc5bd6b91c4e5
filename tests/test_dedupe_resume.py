"""An interrupted full dedupe pass goes on where it stopped and ends where an uninterrupted pass ends; and its
scoring lets SQLite checkpoint, so the WAL does not grow with the catalogue.

At 5M member records a full pass stages for about an hour and scores for hours; it used to start again from
nothing after any interruption, and its one long read over the block walk kept SQLite from checkpointing
until the WAL outgrew the database (27.8 GB, BENCHMARKS.md "The 5M run").  Here the LoC variant set (real
records, seven members) is deduplicated with small batches, so each phase has many commits, and the pass is
crashed in each phase in turn; a second call — asked for an incremental pass, as the scheduler would — must
finish the full pass: the same clusters, pairs and members as a pass that was never interrupted.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select

from dedupe import blocking, components, fullpass, recluster, staging
from dedupe.build import dedupe_changes
from dedupe.evidence import EvidenceStore
from dedupe.members import MemberStore, dedupe_members
from dedupe.score import INTERNAL, MATCH, VETO


class Crash(Exception):
    """The process dying at that point (a kill, a reboot)."""


@pytest.fixture(scope="module")
def normalised(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The variant set harvested and normalised once; each test dedupes its own copy."""
    from dedup_variants import normalised_variants

    folder = tmp_path_factory.mktemp("resume-variants")
    with normalised_variants(folder) as (vs, _cat):
        sources = vs.sources
    return folder / "data", sources


@contextmanager
def catalogue(normalised, into: Path) -> Iterator[object]:
    from consortium.load import parse_sources
    from unioncat import pipeline
    from unioncat.settings import Settings

    data, sources = normalised
    shutil.copytree(data, into)
    cat = pipeline.Catalogue(Settings(data_dir=into, sources_path=into / "sources.yaml"),
                             parse_sources({"consortium": {"name": "variants"}, "sources": sources}, "<variants>"))
    try:
        yield cat
    finally:
        cat.close()


def with_small_batches(patch: pytest.MonkeyPatch) -> None:
    """Every phase in many commits: staging 60 records, scoring 20 blocks, clustering 50 records a batch and
    two batches a commit (a crash at the third batch leaves two committed)."""
    in_batches = staging.in_batches
    patch.setattr(staging, "in_batches", lambda changes, take, flush: in_batches(changes, take, flush, size=60))
    patch.setattr(blocking, "BATCH", 20)
    patch.setattr(components, "BATCH", 50)
    patch.setattr(recluster, "COMMIT_EVERY", 2)


@pytest.fixture
def small_batches(monkeypatch):
    with_small_batches(monkeypatch)


def dedupe(cat, since_seq: int = 0):
    return dedupe_changes(cat.records, cat.clusters, cat.members, since_seq, merge_batch=40,
                          source_order=cat.source_order())


def outcome(cat) -> tuple:
    """What a pass leaves: every member's cluster, every stored pair, every entry, nothing half done."""
    with cat.engine.connect() as conn:
        members = sorted(conn.execute(select(dedupe_members.c.source, dedupe_members.c.local_id,
                                             dedupe_members.c.cluster_id)).all())
    pairs = sorted(EvidenceStore(cat.engine).all_pairs((MATCH, VETO, INTERNAL)))
    entries = sorted((c.id, tuple(sorted(map(tuple, c.members))), c.work_key, c.record.title)
                     for c in cat.clusters.iter_live())
    assert fullpass.current(cat.engine) == fullpass.FullPass()
    assert not cat.members.pending(10)
    return members, pairs, entries


def crash_after(monkeypatch, owner, name: str, calls: int) -> None:
    real = getattr(owner, name)
    made = [0]

    def counted(*args, **kwargs):
        made[0] += 1
        if made[0] > calls:
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


@pytest.fixture(scope="module")
def uninterrupted(normalised, tmp_path_factory) -> tuple:
    with pytest.MonkeyPatch.context() as patch:
        with_small_batches(patch)
        with catalogue(normalised, tmp_path_factory.mktemp("whole") / "data") as cat:
            report = dedupe(cat)
            return outcome(cat), report


@pytest.mark.parametrize("phase, owner, name, calls", [
    ("staging", EvidenceStore, "stage", 4),
    ("scoring", EvidenceStore, "add_pairs", 6),
    ("clustering", MemberStore, "commit_assignment", 2),
    ("merging", MemberStore, "merged", 3),
])
def test_an_interrupted_full_pass_goes_on_and_ends_as_one_pass(normalised, uninterrupted, small_batches, tmp_path,
                                                                monkeypatch, phase, owner, name, calls):
    whole, whole_report = uninterrupted
    with catalogue(normalised, tmp_path / "data") as cat:
        with monkeypatch.context() as crashing:
            crash_after(crashing, owner, name, calls)
            with pytest.raises(Crash):
                dedupe(cat)
        place = fullpass.current(cat.engine)
        assert fullpass.PHASES[place.phase] == phase
        report = dedupe(cat, since_seq=7)     # the scheduler's next call asks for an incremental pass
        assert report.resumed.startswith(phase)
        assert report.last_seq == whole_report.last_seq == place.ceiling
        assert outcome(cat) == whole
        if phase == "staging":
            assert 0 < place.staged < place.ceiling
            assert report.records_changed < whole_report.records_changed
        if phase == "scoring":
            assert place.scored > 0
            assert 0 < report.pairs_compared < whole_report.pairs_compared


def test_a_full_pass_that_ends_leaves_no_place_and_the_next_pass_is_incremental(normalised, tmp_path):
    with catalogue(normalised, tmp_path / "data") as cat:
        first = dedupe(cat)
        assert not first.resumed and fullpass.current(cat.engine).phase == fullpass.IDLE
        again = dedupe(cat, since_seq=first.last_seq)
        assert again.records_changed == 0 and again.pairs_compared == 0


def test_scoring_lets_sqlite_checkpoint(normalised, small_batches, tmp_path, monkeypatch):
    """With a checkpoint after every commit (and the WAL cut back after each), the WAL holds about one batch's
    pages while scoring.  The control is the same pass beside a read held open from start to end, as the old
    streamed walk was: then every page scoring writes stays in the WAL."""
    alone = _wal_pages_while_scoring(normalised, tmp_path / "alone", monkeypatch, hold_a_read=False)
    held = _wal_pages_while_scoring(normalised, tmp_path / "held", monkeypatch, hold_a_read=True)
    assert len(alone) == len(held) > 20
    assert max(alone) * 4 < max(held)
    assert held == sorted(held)     # with a read held open the WAL only grows


def _wal_pages_while_scoring(normalised, into: Path, monkeypatch, hold_a_read: bool) -> list[int]:
    """The WAL's size in pages after each scoring commit of a full pass."""
    with catalogue(normalised, into / "data") as cat:
        cat.engine.dispose()
        event.listen(cat.engine, "connect", lambda conn, _: conn.executescript(
            "PRAGMA wal_autocheckpoint=1; PRAGMA journal_size_limit=0;"))
        wal = Path(str(cat.engine.url.database) + "-wal")
        pages: list[int] = []
        stored = EvidenceStore.add_pairs

        def measured(self, pairs, *args, **kwargs):
            stored(self, pairs, *args, **kwargs)
            pages.append(wal.stat().st_size // 4096 if wal.exists() else 0)   # gone: no connection open

        with monkeypatch.context() as patched, cat.engine.connect() as reader:
            patched.setattr(EvidenceStore, "add_pairs", measured)
            if hold_a_read:    # a statement stepped once and left open holds its snapshot, as the stream did
                cursor = reader.connection.dbapi_connection.execute("SELECT seq FROM records")
                assert cursor.fetchone()
            dedupe(cat)
        return pages
