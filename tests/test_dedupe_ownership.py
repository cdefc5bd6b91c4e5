"""Each pair is scored once, by the first block (in key order) its two records share.

The copies of one book share a title, a words, an author-and-year and an ISBN block; blocking
drops the pairs an earlier block owns before the pre-filter, so a pair is neither pre-filtered nor
compared twice — and an incremental pass over large blocks (one author and year holding dozens of
books, big enough for the pre-filter's matrices) keeps exactly the pairs a full pass keeps with a
changed record, once each, and counts each of its pairs once.
"""
from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from dedupe.blocking import MemoryBlocks, find_pairs
from dedupe.features import SIGNATURE, blocking_keys, record_features
from dedupe.score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, compare
from normaliser.model import Contributor, Record

WORDS = ["".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz", k=8)) for i in range(400)]


def catalogue() -> dict:
    """Features of 24 books by one author in one year, two to four copies each (ISBN sometimes missing)."""
    rng = random.Random(14)
    records = []
    for book in range(24):
        title = " ".join(WORDS[4 * book:4 * book + 4])
        isbn = f"978030640{book:03d}0"
        for copy in range(rng.choice((2, 3, 4))):
            records.append(Record(source=f"m{copy}", local_id=str(book), year=1899, title=title.upper() if copy else title,
                                  contributors=[Contributor("Chadman, Charles E.", primary=True)],
                                  isbns=[isbn] if copy != 2 else []))
    return {r.key: record_features(r) for r in records}


def blocks_of(keys: dict) -> dict[str, list]:
    blocks = defaultdict(list)
    for rec, ks in keys.items():
        for k in ks:
            if not k.startswith(SIGNATURE):
                blocks[k].append(rec)
    return blocks


def reference(feats: dict, keys: dict) -> tuple[set, dict]:
    """Every pair two records' blocks give, once, and the kept ones by the all-pairs loop."""
    todo = {p for rs in blocks_of(keys).values() for p in itertools.combinations(sorted(rs), 2)}
    kept = {}
    for a, b in todo:
        v = compare(feats[a], feats[b])
        if v.decision in (MATCH, INTERNAL) or (v.decision == VETO and v.features.get("title", 0) >= EVIDENCE_TITLE):
            kept[(a, b)] = (v.decision, v.rule)
    return todo, kept


@pytest.fixture(scope="module")
def built():
    feats = catalogue()
    keys = {r: blocking_keys(f) for r, f in feats.items()}
    return feats, keys, *reference(feats, keys)


def test_a_full_pass_scores_each_pair_once(built):
    feats, keys, todo, kept = built
    assert max(len(rs) for rs in blocks_of(keys).values()) > 60          # the author block: past the matrices' cut
    found = find_pairs(None, MemoryBlocks(keys, feats))
    got = [(p.a, p.b) for p in found.pairs]
    assert len(got) == len(set(got)) and {(p.a, p.b): (p.decision, p.rule) for p in found.pairs} == kept
    assert found.compared + found.prefiltered == len(todo)                # each pair counted once
    assert found.compared < len(todo) // 4


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_over_large_blocks_keeps_the_reference_pairs_once(built, seed):
    feats, keys, todo, kept = built
    changed = set(random.Random(seed).sample(sorted(feats), 5))
    found = find_pairs(changed, MemoryBlocks(keys, feats))
    got = [(p.a, p.b) for p in found.pairs]
    assert len(got) == len(set(got))
    expected = {p: v for p, v in kept.items() if changed & set(p)}
    assert expected and {(p.a, p.b): (p.decision, p.rule) for p in found.pairs} == expected
    assert found.compared + found.prefiltered == len({p for p in todo if changed & set(p)})
