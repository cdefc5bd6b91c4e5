"""The dedupe machinery at scale decides exactly what the all-pairs loop decided.

Blocks are scored a batch at a time from the indexed ``dedupe_keys`` table,
a pair two blocks share is scored once, and the exact pre-filter drops pairs
before ``compare``; none of that may change a decision.  The reference here is
the plain loop the machinery replaced: every pair of records sharing a block
that is not refused, each scored by ``compare``.  On the LoC variant set (real
records, six members' cataloguing, hard negatives) the stored pairs and the
clusters of a build must equal the reference's.
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from dedupe.blocking import MemoryBlocks, find_pairs
from dedupe.cluster import cluster
from dedupe.evidence import EvidenceStore
from dedupe.features import SIGNATURE, blocking_keys
from dedupe.prefilter import may_keep
from dedupe.score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, compare


def reference_pairs(feats: dict, keys: dict, max_block: int) -> dict:
    """(a, b) → (decision, rule) of every kept pair, by the all-pairs loop over non-refused blocks."""
    blocks = defaultdict(list)
    for rec, ks in keys.items():
        for k in ks:
            if not k.startswith(SIGNATURE):
                blocks[k].append(rec)
    todo = set()
    for members in blocks.values():
        if len(members) <= max_block:
            todo.update(itertools.combinations(sorted(members), 2))
    kept = {}
    for a, b in todo:
        v = compare(feats[a], feats[b])
        if v.decision in (MATCH, INTERNAL) or (v.decision == VETO and v.features.get("title", 0) >= EVIDENCE_TITLE):
            kept[(a, b)] = (v.decision, v.rule)
    return kept


@pytest.fixture(scope="module")
def variant_build(tmp_path_factory):
    """The variant set built by the pipeline: its stored features, pairs and cluster assignment."""
    from dedup_variants import built_variants

    with built_variants(tmp_path_factory.mktemp("scale-variants")) as (_, cat, report):
        stored = cat.members.load()
        evidence = EvidenceStore(cat.engine)
        feats = evidence.features(stored)
        pairs = {(a, b): (d, r) for a, b, d, r, _ in evidence.all_pairs((MATCH, VETO, INTERNAL))}
        url = cat.engine.url.render_as_string(hide_password=False)
    return feats, stored, pairs, report, url


def test_stored_pairs_equal_the_all_pairs_loop(variant_build):
    feats, stored, pairs, report, _ = variant_build
    assert len(feats) == len(stored) > 600
    expected = reference_pairs(feats, {k: ks for k, (ks, _) in stored.items()}, max_block=500)
    assert len(expected) > 300 and pairs == expected
    assert report.pairs_prefiltered > 0    # (the variant set is mostly true duplicates: few pairs to drop)


def test_clusters_equal_the_all_pairs_loops(variant_build):
    feats, stored, _, _, _ = variant_build
    keys = {k: ks for k, (ks, _) in stored.items()}
    kept = reference_pairs(feats, keys, max_block=500)
    edges = [(a, b, compare(feats[a], feats[b]).score, rule) for (a, b), (d, rule) in kept.items() if d == MATCH]
    vetoed = [(a, b) for (a, b), (d, _) in kept.items() if d == VETO]
    expected, _ = cluster(keys, edges, vetoed=vetoed)
    by_cluster = defaultdict(list)
    for k, (_, cid) in stored.items():
        by_cluster[cid].append(k)
    assert sorted(sorted(g) for g in by_cluster.values()) == expected


def test_small_blocks_and_refused_blocks_in_memory(variant_build):
    """The same through :class:`MemoryBlocks` with a cap that refuses blocks: refused ones are reported."""
    feats, stored, _, _, _ = variant_build
    keys = {k: blocking_keys(f) for k, f in feats.items()}
    found = find_pairs(None, MemoryBlocks(keys, feats), max_block=4)
    assert found.refused and all(n > 4 for n in found.refused.values())
    assert {(p.a, p.b): (p.decision, p.rule) for p in found.pairs} == reference_pairs(feats, keys, max_block=4)


def test_oversized_blocks_are_split_by_default_and_their_pairs_found(variant_build):
    """With the default settings a block over the cap is split into title windows, not refused: a cap of 10
    makes the variant set's author blocks (18–20 records, one author's look-alike series) oversized, and
    the build's block store still finds every pair the all-pairs loop keeps — none from a refused block."""
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine
    from unioncat.settings import Settings

    feats, stored, pairs, _, url = variant_build
    window = Settings().block_window
    assert window > 0
    found = find_pairs(None, BlockStore(make_engine(url)), max_block=10, window=window)
    assert found.split == {"author:johnson|2001": 18, "author:saroff|2001": 18, "authors:johnson|saroff": 20}
    assert not found.refused
    assert {(p.a, p.b): (p.decision, p.rule) for p in found.pairs} == pairs
    refused = find_pairs(None, BlockStore(make_engine(url)), max_block=10, window=0)
    assert refused.refused == found.split and len(refused.pairs) < len(pairs)   # refusing loses pairs


def test_prefilter_keeps_every_pair_compare_keeps(variant_build):
    """Over one big mixed block (every record against every other), nothing compare() keeps is dropped."""
    feats, _, _, _, _ = variant_build
    recs = sorted(feats)[:400]
    block = [feats[r] for r in recs]
    candidates = set(may_keep(block))
    kept = {(i, j) for i, j in itertools.combinations(range(len(recs)), 2)
            if compare(block[i], block[j]).decision != "no"}
    assert kept and kept <= candidates and len(candidates) < len(recs) * (len(recs) - 1) // 20


def test_two_worker_processes_find_the_same_pairs(variant_build):
    """Blocks scored by forked workers (each its own connections to the store) give the same pairs."""
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine

    _, _, pairs, _, url = variant_build
    engine = make_engine(url)
    found = find_pairs(None, BlockStore(engine), workers=2)
    assert {(p.a, p.b): (p.decision, p.rule) for p in found.pairs} == pairs


def test_the_block_walk_gives_every_shared_block_once_and_a_record_about_once(variant_build):
    """A full pass takes every block two records share exactly once, and, in the order of each block's first
    member, a record's blocks mostly fall in one batch: its features are decoded about once, not once per block."""
    from dedupe.blocking import BATCH
    from dedupe.blockstore import BlockStore
    from storage.db import make_engine

    feats, stored, _, _, url = variant_build
    keys = {k: ks for k, (ks, _) in stored.items()}
    carriers = defaultdict(set)
    for record, ks in keys.items():
        for k in ks:
            if not k.startswith(SIGNATURE):
                carriers[k].add(record)
    shared = {k for k, rs in carriers.items() if len(rs) > 1}
    memory = MemoryBlocks(keys, feats)
    engine = make_engine(url)
    walked = list(BlockStore(engine).walk(BATCH // 10))
    assert sorted(k for batch in walked for k in batch) == sorted(shared)
    assert sorted(k for batch in memory.walk(BATCH // 10) for k in batch) == sorted(shared)
    decoded = sum(len(BlockStore(engine).batch(batch, None).features) for batch in walked)
    in_key_order = sorted(shared)
    by_key = sum(len(BlockStore(engine).batch(in_key_order[i:i + BATCH // 10], None).features)
                 for i in range(0, len(in_key_order), BATCH // 10))
    records = len({r for k in shared for r in carriers[k]})
    assert decoded < 1.6 * records < by_key
