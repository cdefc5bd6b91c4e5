"""An exact pre-filter over a block: the pairs ``score.compare`` could keep, found a block at a time.

Most pairs of a block (same author and year, other books) fail ``compare``'s
first test — no shared identifier, title similarity below
``score.NO_RULE_BELOW`` and neither title's words inside the other's — and
are dropped unseen.  Here that test runs over the whole block in C
(``rapidfuzz.process.cdist``) and numpy, and only the pairs that might pass
go to ``compare``.  Each part is an upper bound of what ``compare`` computes,
so no pair it would keep is lost:

* title: the best plain ``fuzz.ratio`` of any title form both records have
  (``title_similarity`` takes the same ratios, some less a penalty);
* identifiers: the records share a value of one of ``score.ID_KINDS``;
* containment: ``fuzz.token_set_ratio`` is 100 whenever one title's word set
  holds the other's.

The thresholds come from ``score``, so a rule change there carries over.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from rapidfuzz import fuzz, process

from .features import Features
from .score import ID_KINDS, NO_RULE_BELOW

#: The title forms ``score.title_similarity`` compares.
TITLE_FORMS = ("t", "s", "han", "py")
#: Blocks up to this many pairs (8 records) go straight to ``compare``: building the matrices costs
#: more than the pairs they would save (measured on the LoC variant set: ~2 ms a block against ~0.3 ms a pair).
SMALL = 28


def _ratios(values: list[str], scorer, cutoff: float) -> np.ndarray:
    """n×n ``scorer`` of every two non-empty values (0 where either is empty)."""
    n = len(values)
    out = np.zeros((n, n), dtype=np.float32)
    idx = [i for i, v in enumerate(values) if v]
    if len(idx) >= 2:
        sub = [values[i] for i in idx]
        out[np.ix_(idx, idx)] = process.cdist(sub, sub, scorer=scorer, score_cutoff=cutoff, dtype=np.float32,
                                              workers=1)
    return out


def _shared_ids(feats: list[Features]) -> np.ndarray:
    """n×n: the two records share an identifier of a kind ``compare`` counts."""
    n = len(feats)
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(feats):
        for kind in ID_KINDS:
            for value in f.get(kind) or ():
                holders[(kind, value)].append(i)
    out = np.zeros((n, n), dtype=bool)
    for idx in holders.values():
        if len(idx) >= 2:
            out[np.ix_(idx, idx)] = True
    return out


def may_keep(feats: list[Features]) -> list[tuple[int, int]]:
    """The pairs (i < j) of a block that ``compare`` might keep; the others it would certainly drop."""
    n = len(feats)
    if n * (n - 1) // 2 <= SMALL:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    keep = np.zeros((n, n), dtype=bool)
    for form in TITLE_FORMS:
        keep |= _ratios([f[form] or "" for f in feats], fuzz.ratio, NO_RULE_BELOW) >= NO_RULE_BELOW
    keep |= _ratios([f["t"] or "" for f in feats], fuzz.token_set_ratio, 100) >= 100
    keep |= _shared_ids(feats)
    i, j = np.nonzero(np.triu(keep, 1))
    return list(zip(i.tolist(), j.tolist()))
