"""Blocking: which pairs get scored, and only pairs with a changed record.

Every record carries several blocking keys (see ``features.blocking_keys``);
two records are compared when they share one.  A block larger than
``max_block`` (a generic title, a bad ISBN printed in thousands of records,
a very common surname in one year) is refused and reported, never compared
all-pairs.  Incremental: a pass compares each changed record with the
members of its blocks — records that did not change keep their stored pairs,
so changing 1% of the records costs about 1% of a full pass.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .evidence import Pair, ordered
from .features import SIGNATURE, Features
from .score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, compare

RecordKey = tuple[str, str]


@dataclass
class Found:
    pairs: list[Pair] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)   # block key → records carrying it
    compared: int = 0                                        # pairs scored
    candidates: int = 0                                      # unchanged records loaded to compare with


def block_index(all_keys: Mapping[RecordKey, Iterable[str]], wanted: set[str]) -> dict[str, list[RecordKey]]:
    """The members of the blocks in ``wanted`` (one pass over every record's stored keys)."""
    index: dict[str, list[RecordKey]] = defaultdict(list)
    for rec, keys in all_keys.items():
        for k in keys:
            if k in wanted:
                index[k].append(rec)
    return index


def find_pairs(changed: Mapping[RecordKey, Features], all_keys: Mapping[RecordKey, list[str]],
               load_features: Callable[[Iterable[RecordKey]], dict[RecordKey, Features]],
               max_block: int = 500, progress: Callable[[str], None] | None = None) -> Found:
    """Score every changed record against the records sharing one of its blocks."""
    found = Found()
    if not changed:
        return found
    wanted = {k for rec in changed for k in all_keys.get(rec, ()) if not k.startswith(SIGNATURE)}
    index = block_index(all_keys, wanted)
    for key, members in index.items():
        if len(members) > max_block:
            found.refused[key] = len(members)
    todo: set[tuple[RecordKey, RecordKey]] = set()
    for rec in changed:
        for k in all_keys.get(rec, ()):
            members = index.get(k)
            if not members or k in found.refused:
                continue
            for other in members:
                if other != rec:
                    todo.add(ordered(rec, other))
    others = {x for pair in todo for x in pair if x not in changed}
    found.candidates = len(others)
    feats: dict[RecordKey, Features] = dict(changed)
    feats.update(load_features(others))
    if progress:
        progress(f"comparing {len(todo)} pairs ({found.candidates} unchanged records in the blocks)")
    for a, b in todo:
        fa, fb = feats.get(a), feats.get(b)
        if fa is None or fb is None:
            continue
        found.compared += 1
        if progress and found.compared % 200_000 == 0:
            progress(f"compared {found.compared} of {len(todo)} pairs")
        verdict = compare(fa, fb)
        if verdict.decision in (MATCH, INTERNAL) or (
                verdict.decision == VETO and verdict.features.get("title", 0) >= EVIDENCE_TITLE):
            found.pairs.append(Pair(a, b, verdict.decision, verdict.rule, verdict.score, verdict.features))
    return found
