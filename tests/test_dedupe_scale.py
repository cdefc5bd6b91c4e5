"""The dedupe machinery at scale decides exactly what the all-pairs loop decided.

Blocks are scored a batch at a time from the indexed ``dedupe_keys`` table,
a pair two blocks share is scored once, and the exact pre-filter drops pairs
before ``compare``; none of that may change a decision.  The reference is
``dedupe_reference``: the plain loop the machinery replaced — every pair of
records sharing a block that is not refused, each scored by ``compare``, the
clusters made of the kept pairs.  On the LoC variant set (real records, six
members' cataloguing, hard negatives) and on DBLP-ACM the stored pairs and the
clusters of a build must equal the reference's; with blocks over the cap
split rather than refused, every difference must come from those blocks.
"""
from __future__ import annotations

import gc
import itertools
import os
import threading
from collections import defaultdict
from dataclasses import dataclass

import pytest

from dedupe import blocking
from dedupe.blocking import MemoryBlocks, find_pairs
from dedupe.evidence import EvidenceStore
from dedupe.features import SIGNATURE, blocking_keys
from dedupe.prefilter import may_keep
from dedupe.score import INTERNAL, MATCH, VETO, compare
from dedupe_reference import Comparison, Reference, blocks_of, check, compare_with, reference, reference_pairs


@dataclass
class Built:
    """A variant-set build: its stored features, member keys and clusters, pairs, report, database, and
    the oracle's comparison of it with the all-pairs loop (``reference``: what the loop made of it)."""

    feats: dict
    stored: dict
    pairs: dict
    report: object
    url: str
    comparison: Comparison
    reference: Reference


def _build(folder, **settings) -> Built:
    from dedup_variants import built_variants

    with built_variants(folder, **settings) as (_, cat, report):
        stored = cat.members.load()
        evidence = EvidenceStore(cat.engine)
        feats = evidence.features(stored)
        pairs = {(a, b): (d, r, s) for a, b, d, r, s in evidence.all_pairs((MATCH, VETO, INTERNAL))}
        url = cat.engine.url.render_as_string(hide_password=False)
        comparison = check(cat)
    return Built(feats, stored, pairs, report, url, comparison, reference(feats, cat.settings.max_block))


@pytest.fixture(scope="module")
def variant_build(tmp_path_factory) -> Built:
    """The variant set built by the pipeline with the default settings."""
    return _build(tmp_path_factory.mktemp("scale-variants"))


def test_stored_pairs_and_clusters_equal_the_all_pairs_loop(variant_build):
    """No block of the variant set is over the cap: the build is the loop's, pair for pair, cluster for cluster."""
    built = variant_build
    assert len(built.feats) == len(built.stored) > 600
    assert built.comparison.identical, built.comparison.summary()
    assert built.comparison.records == len(built.stored) and not built.comparison.oversized
    assert len(built.reference.pairs) > 300 and built.pairs == built.reference.pairs
    by_cluster = defaultdict(list)
    for k, (_, cid) in built.stored.items():
        by_cluster[cid].append(k)
    assert sorted(sorted(g) for g in by_cluster.values()) == built.reference.clusters
    assert built.report.pairs_prefiltered > 0    # (the variant set is mostly true duplicates: few pairs to drop)


def test_with_a_tiny_cap_every_difference_comes_from_split_blocks(tmp_path):
    """Built with ``max_block`` 10, the variant set's author blocks (18–20 records) are split into title
    windows; the loop refuses them.  The build finds pairs the loop never scored — all in those blocks —
    and nothing else differs."""
    built = _build(tmp_path, max_block=10)
    comparison = built.comparison
    assert built.report.split_keys and set(built.report.split_keys) <= set(comparison.oversized)
    assert not comparison.identical and comparison.explained, comparison.summary()
    assert comparison.only_built and not comparison.only_reference and not comparison.differing
    assert all(set(blocks) <= set(comparison.oversized) for blocks in comparison.explained_pairs.values())


def test_the_oracle_explains_what_a_smaller_cap_refused(variant_build):
    """The loop with a cap of 2 against the loop without one: every extra pair shares only blocks over 2
    records, and the clusters they change are explained by them (the merges a split block brings)."""
    small = variant_build.reference
    capped = reference(variant_build.feats, 2)
    comparison = compare_with(capped, small.pairs, small.clusters)
    assert comparison.explained and not comparison.identical, comparison.summary()
    assert comparison.merged and all(region.pairs for region in comparison.merged)
    assert any(region.kind == "merge" for region in comparison.merged)
    assert not comparison.only_reference and not comparison.differing


def test_check_catches_a_split_cluster_and_a_stray_pair(variant_build):
    """A built side that split one cluster and kept a pair no block brings together is caught: neither
    comes from an oversized block, so both are unexplained."""
    ref = variant_build.reference
    whole = next(g for g in ref.clusters if len(g) >= 3)
    clusters = [g for g in ref.clusters if g is not whole] + [whole[:1], whole[1:]]
    a, b = next((x, y) for x, y in itertools.combinations(sorted(ref.keys)[:50], 2)
                if not set(ref.keys[x]) & set(ref.keys[y]) & ref.blocks.keys())
    stray = {**ref.pairs, (a, b): (MATCH, "title-author-year", 0.9)}
    comparison = compare_with(ref, stray, clusters)
    assert not comparison.explained and not comparison.identical
    assert comparison.unexplained_pairs == [(a, b)] and comparison.only_built == {(a, b): stray[(a, b)]}
    assert [(r.kind, r.reference, r.pairs) for r in comparison.unexplained_clusters] == [("split", [whole], [])]
    changed = dict(ref.pairs)
    pair = next(iter(changed))
    changed[pair] = (VETO, "year", 0.0)
    assert compare_with(ref, changed, ref.clusters).differing == {pair: ((VETO, "year", 0.0), ref.pairs[pair])}


@pytest.mark.corpus
def test_dblp_acm_clusters_equal_the_all_pairs_loop(tmp_path):
    """DBLP-ACM (4,910 articles, no identifiers: every pair from title, author and year blocks) built by
    the pipeline: the stored pairs and clusters are the loop's."""
    from dedup_corpus import corpus_dir, dblp_acm
    from unioncat import pipeline
    from unioncat.evaluation import file_sources
    from unioncat.settings import Settings

    bench = dblp_acm(corpus_dir("dedup/dblp-acm_pyjedai"), tmp_path / "dblp-acm")
    sources = file_sources(bench.files)
    cat = pipeline.Catalogue(Settings(data_dir=tmp_path / "data", sources_path=tmp_path / "sources.yaml"), sources)
    try:
        pipeline.harvest(cat, list(sources.sources), full=True)
        pipeline.normalise_stage(cat)
        pipeline.dedupe_stage(cat)
        comparison = check(cat)
    finally:
        cat.close()
    assert comparison.records == 4910 and comparison.clusters[0] < 4910 - 2000
    assert comparison.identical, comparison.summary()


def test_small_blocks_and_refused_blocks_in_memory(variant_build):
    """The same through :class:`MemoryBlocks` with a cap that refuses blocks: refused ones are reported."""
    feats = variant_build.feats
    keys = {k: blocking_keys(f) for k, f in feats.items()}
    found = find_pairs(None, MemoryBlocks(keys, feats), max_block=4)
    assert found.refused and all(n > 4 for n in found.refused.values())
    assert {(p.a, p.b): (p.decision, p.rule, p.score) for p in found.pairs} == \
        reference_pairs(feats, blocks_of(keys), max_block=4)


def test_oversized_blocks_are_split_by_default_and_their_pairs_found(variant_build):
    """With the default settings a block over the cap is split into title windows, not refused: a cap of 10
    makes the variant set's author blocks (18–20 records, one author's look-alike series) oversized, and
    the build's block store still finds every pair the all-pairs loop keeps — none from a refused block."""
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine
    from unioncat.settings import Settings

    pairs, url = variant_build.pairs, variant_build.url
    window = Settings().block_window
    assert window > 0
    found = find_pairs(None, BlockStore(make_engine(url)), max_block=10, window=window)
    assert found.split == {"author:johnson|2001": 18, "author:saroff|2001": 18, "authors:johnson|saroff": 20}
    assert not found.refused
    assert {(p.a, p.b): (p.decision, p.rule, p.score) for p in found.pairs} == pairs
    refused = find_pairs(None, BlockStore(make_engine(url)), max_block=10, window=0)
    assert refused.refused == found.split and len(refused.pairs) < len(pairs)   # refusing loses pairs


def test_prefilter_keeps_every_pair_compare_keeps(variant_build):
    """Over one big mixed block (every record against every other), nothing compare() keeps is dropped."""
    feats = variant_build.feats
    recs = sorted(feats)[:400]
    block = [feats[r] for r in recs]
    candidates = set(may_keep(block))
    kept = {(i, j) for i, j in itertools.combinations(range(len(recs)), 2)
            if compare(block[i], block[j]).decision != "no"}
    assert kept and kept <= candidates and len(candidates) < len(recs) * (len(recs) - 1) // 20


def test_two_worker_processes_find_the_same_pairs(variant_build, monkeypatch):
    """Blocks scored by worker processes (the block store sent to them as its URL: each opens its own
    connections) give the same pairs; the pool starts for a pass of at least ``POOL_AFTER`` batches."""
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine

    monkeypatch.setattr(blocking, "POOL_AFTER", 1)     # the variant set is one batch or two
    pairs, url = variant_build.pairs, variant_build.url
    engine = make_engine(url)
    found = find_pairs(None, BlockStore(engine), workers=2)
    assert {(p.a, p.b): (p.decision, p.rule, p.score) for p in found.pairs} == pairs


def test_the_block_walk_gives_every_shared_block_once_and_a_record_about_once(variant_build):
    """A full pass takes every block two records share exactly once, and, in the order of each block's first
    member, a record's blocks mostly fall in one batch: its features are decoded about once, not once per block."""
    from dedupe.blocking import BATCH
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine

    feats, stored, url = variant_build.feats, variant_build.stored, variant_build.url
    keys = {k: ks for k, (ks, _) in stored.items()}
    carriers = defaultdict(set)
    for record, ks in keys.items():
        for k in ks:
            if not k.startswith(SIGNATURE):
                carriers[k].add(record)
    shared = {k for k, rs in carriers.items() if len(rs) > 1}
    memory = MemoryBlocks(keys, feats)
    engine = make_engine(url)
    store = BlockStore(engine)
    assert store.plan_walk() == memory.plan_walk() == len(shared)
    pages = list(store.walk(BATCH // 10))
    walked = [batch for _, batch in pages]
    assert [pos for pos, _ in pages] == list(range(BATCH // 10, len(shared), BATCH // 10)) + [len(shared)]
    assert sorted(k for batch in walked for k in batch) == sorted(shared)
    assert sorted(k for _, batch in memory.walk(BATCH // 10) for k in batch) == sorted(shared)
    assert [k for _, batch in store.walk(BATCH // 10, after=7) for k in batch] == sum(walked, [])[7:]
    decoded = sum(len(BlockStore(engine).batch(batch, None).features) for batch in walked)
    in_key_order = sorted(shared)
    by_key = sum(len(BlockStore(engine).batch(in_key_order[i:i + BATCH // 10], None).features)
                 for i in range(0, len(in_key_order), BATCH // 10))
    records = len({r for k in shared for r in carriers[k]})
    assert decoded < 1.6 * records < by_key


def test_a_full_pass_leaves_the_schema_whole(variant_build):
    """A full pass inserts its pairs and keys without their b-side and record indexes
    (``EvidenceStore.restart``) and builds them again after scoring: the database ends as the schema says, and pairs are found by their b side."""
    from sqlalchemy import inspect

    from storage.db import make_engine
    from unioncat.schema import differences

    engine = make_engine(variant_build.url)
    try:
        assert "ix_dedupe_pairs_b" in {i["name"] for i in inspect(engine).get_indexes("dedupe_pairs")}
        assert "ix_dedupe_keys_record" in {i["name"] for i in inspect(engine).get_indexes("dedupe_keys")}
        assert not differences(engine)
        a, b = next(iter(variant_build.pairs))
        assert any(p.a == a and p.b == b for p in EvidenceStore(engine).pairs_touching([b]))
    finally:
        engine.dispose()


class Watched(MemoryBlocks):
    """Blocks that note, for every batch read, the process reading it and whether its collector is on (a
    worker's memory is its own: in a file).  At module level, so a worker can unpickle it."""

    def __init__(self, seen, *args):
        super().__init__(*args)
        self.seen = seen

    def batch(self, keys, changed):
        with self.seen.open("a") as out:
            out.write(f"{os.getpid()}:{gc.isenabled()}\n")
        return super().batch(keys, changed)


def test_scoring_holds_the_collector_per_batch_here_and_in_the_workers(variant_build, tmp_path, monkeypatch):
    """A batch is scored with the cyclic collector held, in this process and in each worker process, the
    collector back on after it here; with two workers every batch is read in them, none here."""
    seen = tmp_path / "seen"
    monkeypatch.setattr(blocking, "POOL_AFTER", 1)
    blocks = Watched(seen, {r: keys for r, (keys, _) in variant_build.stored.items()}, variant_build.feats)
    for workers in (1, 2):
        seen.write_text("")
        pairs = {(p.a, p.b): (p.decision, p.rule, p.score) for p in find_pairs(None, blocks, workers=workers).pairs}
        lines = [line.split(":") for line in seen.read_text().split()]
        assert pairs == variant_build.pairs and gc.isenabled()
        assert lines and all(on == "False" for _, on in lines)
        here = {pid == str(os.getpid()) for pid, _ in lines}
        assert here == ({True} if workers == 1 else {False})


#: A lock another thread of the caller holds while the scoring pool starts (a logging handler's, a connection
#: pool's: the web app's in-process runner builds in a thread beside the server's).
HELD = threading.Lock()


class Locking(MemoryBlocks):
    """Blocks whose batches take :data:`HELD` (within 20 s, or the batch fails)."""

    def batch(self, keys, changed):
        if not HELD.acquire(timeout=20):
            raise TimeoutError("HELD never came free in this process")
        HELD.release()
        return super().batch(keys, changed)


def test_a_lock_another_thread_holds_at_the_start_does_not_stop_the_workers(variant_build, monkeypatch):
    """Workers forked from the caller inherited its locks in whatever state they were: one held by another
    thread at that moment stayed held in the worker for good (a hang, or here a failed batch).  They come
    from a clean forkserver, so the pass finds its pairs."""
    monkeypatch.setattr(blocking, "POOL_AFTER", 1)
    blocks = Locking({r: keys for r, (keys, _) in variant_build.stored.items()}, variant_build.feats)
    HELD.acquire()
    timer = threading.Timer(1.0, HELD.release)
    timer.start()
    try:
        found = find_pairs(None, blocks, workers=2)
    finally:
        timer.join()
    assert {(p.a, p.b): (p.decision, p.rule, p.score) for p in found.pairs} == variant_build.pairs
