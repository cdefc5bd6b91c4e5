"""Kept verdicts stored once for each pair of feature classes read back as exactly the pairs of records.

A build stores a kept verdict once for two feature classes (``dedupe.classpairs``): the copies of one book at
several members share a class, and every pair of them with another class gets one row.  Read back, those rows
must be the pairs of records the scorer keeps when it hands on every pair (``find_pairs`` without
``by_class``), each with its decision told from the two sources; a member's own duplicates found by the
database's join must be those the expansion gives; and a store written before, holding one row a pair of
records, must read back the same and go on working incrementally.  (The oracle tests of
``test_dedupe_scale.py`` compare the pairs read back with the all-pairs loop besides.)
"""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from dedupe import blocking
from dedupe.blocking import MemoryBlocks, find_pairs
from dedupe.blockstore import BlockStore, dedupe_features, feature_class, shared_text
from dedupe.classpairs import ClassPair, dedupe_class_pairs, expand
from dedupe.classpairs import by_class as by_class_members
from dedupe.features import blocking_keys
from dedupe.evidence import EvidenceStore, dedupe_pairs
from dedupe.prefilter import TITLE_FORMS, copies_may_keep, may_keep
from dedupe.score import ID_KINDS, INTERNAL, MATCH, VETO
from storage.jsoncodec import dumps

ALL = (MATCH, INTERNAL, VETO)
score_classes = blocking._score_classes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The LoC variant set (real records, seven members) built by the pipeline: its catalogue stays open."""
    from dedup_variants import built_variants

    with built_variants(tmp_path_factory.mktemp("classpairs")) as (_vs, cat, report):
        yield cat, report


def count(cat, table) -> int:
    with cat.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_rows_of_classes_read_back_as_the_pairs_of_records_the_scorer_keeps(built):
    cat, report = built
    evidence = EvidenceStore(cat.engine)
    stored = sorted(evidence.all_pairs(ALL))
    found = find_pairs(None, BlockStore(cat.engine), max_block=cat.settings.max_block,
                       window=cat.settings.block_window)
    kept = found.pairs
    assert stored == sorted((p.a, p.b, p.decision, p.rule, p.score) for p in kept)
    assert (report.pairs_compared, report.pairs_prefiltered) == (found.compared, found.prefiltered)
    assert len({(a, b) for a, b, *_ in stored}) == len(stored) > 500
    assert {d for *_, d, _r, _s in stored} == set(ALL)
    # the copies share classes: fewer rows than pairs, and none left as rows of records without split blocks
    with cat.engine.connect() as conn:
        classes = conn.execute(select(func.count(func.distinct(dedupe_features.c.class_id)))).scalar()
    assert classes < count(cat, dedupe_features)
    assert count(cat, dedupe_class_pairs) < len(stored)
    assert report.split_keys or count(cat, dedupe_pairs) == 0


def with_copies(feats: dict) -> dict:
    """``feats`` and copies of them at other members: each record at one to four more (features alike but the
    source), as a consortium holds the copies of one book, so blocks grow past ``SMALL`` with classes in them."""
    out = dict(feats)
    for n, (r, f) in enumerate(sorted(feats.items())):
        for k in range(n % 5):
            out[(f"copy-{k}", f"{r[0]}-{r[1]}")] = dict(f, src=f"copy-{k}")
    return out


@pytest.mark.parametrize("cap, window", [(500, 30), (12, 4)])
def test_blocks_scored_a_class_at_a_time_keep_and_count_what_the_loop_over_records_does(built, monkeypatch,
                                                                                       cap, window):
    cat, _ = built
    feats = with_copies(EvidenceStore(cat.engine).features(cat.members.load()))
    keys = {r: blocking_keys(f) for r, f in feats.items()}
    records = find_pairs(None, MemoryBlocks(keys, feats), max_block=cap, window=window)
    classed: list[str] = []
    monkeypatch.setattr(blocking, "_score_classes", lambda *a: classed.append(a[0]) or score_classes(*a))
    by_class = find_pairs(None, MemoryBlocks(keys, feats), max_block=cap, window=window, by_class=True)
    assert len(classed) > 50
    assert (by_class.compared, by_class.prefiltered) == (records.compared, records.prefiltered)
    classes = {r: feature_class(shared_text(f)) for r, f in feats.items()}
    rows = [p for p in by_class.pairs if isinstance(p, ClassPair)]
    expanded = list(expand([tuple(p[:5]) for p in rows], by_class_members(classes), ALL))
    windows = [(p.a, p.b, p.decision, p.rule, p.score) for p in by_class.pairs if not isinstance(p, ClassPair)]
    assert len(rows) < len(expanded) and bool(windows) == bool(records.split)
    assert sorted(expanded + windows) == sorted((p.a, p.b, p.decision, p.rule, p.score) for p in records.pairs)


def test_a_batchs_verdicts_go_when_it_is_scored_not_when_the_collector_comes(built, monkeypatch):
    """A batch's memo, features and classes hang off its ``Verdicts``: in a reference cycle they would wait
    for the collector, which a pass holds while it scores and which then walks them all (~13 ms a batch)."""
    cat, _ = built
    feats = EvidenceStore(cat.engine).features(cat.members.load())
    keys = {r: blocking_keys(f) for r, f in feats.items()}
    made: list[weakref.ref] = []

    class Tracked(blocking.Verdicts):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))
    monkeypatch.setattr(blocking, "Verdicts", Tracked)
    gc.disable()
    try:
        for by_class in (False, True):
            found = find_pairs(None, MemoryBlocks(keys, feats), max_block=500, by_class=by_class)
            assert found.pairs and made and [ref for ref in made if ref() is not None] == []
    finally:
        gc.enable()


def test_copies_pass_the_pre_filter_as_two_records_alike_do(built):
    cat, _ = built
    feats = list(EvidenceStore(cat.engine).features(cat.members.load()).values())
    bare = [dict(f, **{form: "" for form in TITLE_FORMS}) for f in feats[::5]]
    no_ids = [dict(f, **{kind: [] for kind in ID_KINDS}) for f in bare[::2]]
    tried = 0
    for f in [*feats, *bare, *no_ids]:
        other = dict(f, src=f["src"] + "-other")
        assert copies_may_keep(f) == bool(may_keep([f, other], small=0)), f
        tried += 1
    assert tried > 800 and not all(copies_may_keep(f) for f in no_ids)


def test_a_members_own_duplicates_found_by_the_join_are_those_the_rows_stand_for(built):
    cat, _ = built
    evidence = EvidenceStore(cat.engine)
    internal = [(a, b, rule, score) for a, b, d, rule, score in evidence.all_pairs(ALL) if d == INTERNAL]
    assert internal
    report = evidence.internal_duplicates()
    assert [(p.a, p.b, p.rule, p.score) for p in report] == sorted(internal)
    assert all(p.decision == INTERNAL and p.a[0] == p.b[0] and p.evidence for p in report)
    source = internal[0][0][0]
    assert [p.a[0] for p in evidence.internal_duplicates(source)] == [source] * sum(
        1 for a, *_ in internal if a[0] == source)


def test_pairs_touching_and_within_a_batch_agree_with_every_pair(built):
    cat, _ = built
    evidence = EvidenceStore(cat.engine)
    every = evidence.all_pairs(ALL)
    some = sorted({a for a, *_ in every})[::7]
    touching = evidence.pairs_touching(some)
    assert [(p.a, p.b, p.decision, p.rule, p.score) for p in touching] == sorted(
        row for row in every if row[0] in some or row[1] in some)
    assert sorted(evidence.pairs_of(some)) == sorted(
        row for row in every if (row[0] in some or row[1] in some) and row[2] in (MATCH, VETO))
    inside = set(some) | {b for a, b, *_ in every if a in some}
    assert sorted(evidence.pairs_within(inside)) == sorted(
        row for row in every if row[0] in inside and row[1] in inside and row[2] in (MATCH, VETO))


def as_rows_of_records(cat) -> None:
    """The store as a version before classes wrote it: every pair one row of records, no row of classes."""
    evidence = EvidenceStore(cat.engine)
    members = sorted({(s, l) for s, l in cat.members.load()})
    pairs = evidence.pairs_touching(members)
    with cat.engine.begin() as conn:
        conn.execute(dedupe_class_pairs.delete())
        conn.execute(insert(dedupe_pairs), [dict(a_source=p.a[0], a_id=p.a[1], b_source=p.b[0], b_id=p.b[1],
                                                 decision=p.decision, rule=p.rule, score=p.score,
                                                 evidence=dumps(p.evidence)) for p in pairs])


def test_a_store_of_pairs_of_records_reads_back_the_same_and_goes_on(tmp_path: Path):
    from dedup_variants import built_variants
    from unioncat import pipeline

    with built_variants(tmp_path) as (_vs, cat, _report):
        evidence = EvidenceStore(cat.engine)
        before = sorted(evidence.all_pairs(ALL))
        clusters = sorted(tuple(sorted(map(tuple, c.members))) for c in cat.clusters.iter_live())
        as_rows_of_records(cat)
        assert count(cat, dedupe_class_pairs) == 0 and count(cat, dedupe_pairs) == len(before)
        assert sorted(evidence.all_pairs(ALL)) == before
        # an incremental pass over the old rows (40 records changed: their rows of records go, their pairs are
        # scored again and stored by class) reads back every pair once, and the clusters stay
        with cat.engine.begin() as conn:
            ids = [r[0] for r in conn.exec_driver_sql(
                "SELECT id FROM records WHERE kind = 'bibliographic' AND deleted = 0 ORDER BY id LIMIT 40")]
            top = conn.exec_driver_sql("SELECT value FROM counters WHERE name = 'record_seq'").scalar()
            for n, rid in enumerate(ids):
                conn.exec_driver_sql("UPDATE records SET seq = ? WHERE id = ?", (top + n + 1, rid))
            conn.exec_driver_sql("UPDATE counters SET value = ? WHERE name = 'record_seq'", (top + len(ids),))
        report = pipeline.dedupe_stage(cat)
        assert report.records_changed == len(ids) and report.pairs_compared > 0
        assert 0 < count(cat, dedupe_class_pairs) and count(cat, dedupe_pairs) < len(before)
        after = evidence.all_pairs(ALL)
        assert len({(a, b) for a, b, *_ in after}) == len(after)
        assert sorted(after) == before
        assert sorted(tuple(sorted(map(tuple, c.members))) for c in cat.clusters.iter_live()) == clusters
