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
from collections.abc import Iterable

import numpy as np
from rapidfuzz import fuzz, process

from .features import Features
from .score import ID_KINDS, NO_RULE_BELOW

#: The title forms ``score.title_similarity`` compares (every one: a form left out here loses the pairs only
#: it joins — the Han title proper ``hs`` was, and a 250k LoC build lost 501 pairs the all-pairs loop keeps).
TITLE_FORMS = ("t", "s", "han", "hs", "py")
#: Blocks up to this many pairs (8 records) go straight to ``compare``: building the matrices costs
#: more than the pairs they would save (measured on the LoC variant set: ~2 ms a block against ~0.3 ms a pair).
SMALL = 28


#: The title tests, in order: any one passing lets a pair through.  Every live pair lies in the rows × columns
#: the ratios are taken over (or its mirror), so once a test lets all of them through the others, and the
#: shared identifiers, cannot add one: a block of copies of one book (one title) stops after the first.
_TESTS = [(form, fuzz.ratio, NO_RULE_BELOW) for form in TITLE_FORMS] + [("t", fuzz.token_set_ratio, 100)]


def _ratios(values: list[str], rows: np.ndarray, cols: np.ndarray, scorer, cutoff: float) -> np.ndarray:
    """len(rows)×len(cols) ``scorer`` of the two values of each (row, column) record (0 where either is empty).

    Each distinct value is scored once: the copies of one book in a block carry one title, so the
    matrix of distinct titles is a fraction of the records' (expanded by indexing, the same numbers).
    """
    out = np.zeros((len(rows), len(cols)), dtype=np.float32)
    r = [i for i, v in enumerate(rows.tolist()) if values[v]]
    c = [j for j, v in enumerate(cols.tolist()) if values[v]]
    if r and c:
        row_values, row_of = _distinct([values[rows[i]] for i in r])
        col_values, col_of = _distinct([values[cols[j]] for j in c])
        scores = process.cdist(row_values, col_values, scorer=scorer, score_cutoff=cutoff, dtype=np.float32,
                               workers=1)
        out[np.ix_(r, c)] = scores[np.ix_(row_of, col_of)]
    return out


def _distinct(values: list[str]) -> tuple[list[str], list[int]]:
    """The distinct ``values`` (first-seen order) and the position of each value among them."""
    index: dict[str, int] = {}
    of = [index.setdefault(v, len(index)) for v in values]
    return list(index), of


def co_held(groups: Iterable[list[int]], n: int) -> np.ndarray:
    """n×n: records i and j are in one of ``groups`` (lists of record indexes: the holders of one value)."""
    out = np.zeros((n, n), dtype=bool)
    for idx in groups:
        if len(idx) >= 2:
            out[np.ix_(idx, idx)] = True
    return out


def _shared_ids(feats: list[Features]) -> np.ndarray:
    """n×n: the two records share an identifier of a kind ``compare`` counts."""
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(feats):
        for kind in ID_KINDS:
            for value in f.get(kind) or ():
                holders[(kind, value)].append(i)
    return co_held(holders.values(), len(feats))


def may_keep(feats: list[Features], live: np.ndarray | None = None,
             cover: np.ndarray | None = None, small: int = SMALL) -> list[tuple[int, int]]:
    """The pairs (i < j) of a block that ``compare`` might keep; the others it would certainly drop.

    ``live`` (n×n, upper triangle) limits the answer to the pairs the caller will score — the others
    (owned by an earlier block, or without a changed record) are not worth a ratio.  The ratios are
    taken between the records of ``cover`` (every live pair has one end there: by default the rows
    with a live pair) and the records they are live with, so a block whose pairs are mostly scored
    elsewhere, or an incremental pass's block with one changed record, costs a thin slice of n×n.
    Up to ``small`` pairs every live pair is let through untested (``SMALL``; 0: always tested).
    """
    n = len(feats)
    if live is None:
        live = np.triu(np.ones((n, n), dtype=bool), 1)
    if n * (n - 1) // 2 <= small or not live.any():
        i, j = np.nonzero(live)
        return list(zip(i.tolist(), j.tolist()))
    rows = np.flatnonzero(live.any(axis=1)) if cover is None else cover
    cols = np.flatnonzero((live | live.T)[rows].any(axis=0))
    sub = np.zeros((len(rows), len(cols)), dtype=bool)
    for form, scorer, cutoff in _TESTS:
        sub |= _ratios([f[form] or "" for f in feats], rows, cols, scorer, cutoff) >= cutoff
        if sub.all():
            break
    keep = np.zeros((n, n), dtype=bool)
    keep[np.ix_(rows, cols)] = sub
    keep |= keep.T
    if not sub.all():
        keep |= _shared_ids(feats)
    i, j = np.nonzero(keep & live)
    return list(zip(i.tolist(), j.tolist()))


def copies_may_keep(f: Features) -> bool:
    """:func:`may_keep` of two records with features ``f`` alike (source aside): any title form is let through
    by its own ratio (100), any identifier is shared; with neither, no test lets the pair through."""
    return any(f[form] for form in TITLE_FORMS) or any(f.get(kind) for kind in ID_KINDS)
