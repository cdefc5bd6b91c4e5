"""Dedupe quality: pairwise precision, recall and F1 against a gold standard.

Pure functions, no I/O.  Only records listed in the gold mapping count: a
*pair* is two gold-listed records; a *true* pair shares a gold entity; a
*predicted* pair shares a cluster.  Precision is correct / predicted pairs,
recall correct / true pairs; with nothing to divide by, precision (no pair
predicted, so no wrong merge) and recall (no true pair to find) are 1.0.

``by_rule`` says which rule joined each predicted pair (the pairwise
scoring rule stored with the pair), or, from the records' keys alone, which
key kind joined it: a pair counts under every kind (the part of a key before
its first ``:``) whose key both records carry, and under ``transitive`` when
they share none and were joined only through other records.
"""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Hashable

from .features import SIGNATURE

RecordKey = tuple[str, str]  # (source, local_id)
TRANSITIVE = "transitive"


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    pairs_true: int
    pairs_predicted: int
    pairs_correct: int

    def as_dict(self, ndigits: int = 6) -> dict:
        return {"precision": round(self.precision, ndigits), "recall": round(self.recall, ndigits),
                "f1": round(self.f1, ndigits), "pairs_true": self.pairs_true,
                "pairs_predicted": self.pairs_predicted, "pairs_correct": self.pairs_correct}


@dataclass(frozen=True)
class Evaluation:
    scores: Scores
    clusters: int                         # predicted clusters holding at least one gold-listed record
    by_rule: dict[str, Scores] | None = None

    def as_dict(self, ndigits: int = 6) -> dict:
        s = self.scores.as_dict(ndigits)
        out = {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"],
               "pairs_true": s["pairs_true"], "pairs_predicted": s["pairs_predicted"], "clusters": self.clusters}
        if self.by_rule is not None:
            out["by_rule"] = {rule: sc.as_dict(ndigits) for rule, sc in sorted(self.by_rule.items())}
        return out


class UnionFind:
    """Gold standards given as matching pairs (Cora, DBLP-ACM) become entities through it (bench/)."""

    def __init__(self) -> None:
        self.parent: dict[RecordKey, RecordKey] = {}

    def find(self, x: RecordKey) -> RecordKey:
        parent = self.parent
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: RecordKey, b: RecordKey) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def pairs(n: int) -> int:
    return n * (n - 1) // 2


def scores(pairs_true: int, pairs_predicted: int, pairs_correct: int) -> Scores:
    precision = pairs_correct / pairs_predicted if pairs_predicted else 1.0
    recall = pairs_correct / pairs_true if pairs_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, pairs_true, pairs_predicted, pairs_correct)


def key_kind(key: str) -> str:
    """``isbn:book:978…`` → ``isbn``."""
    return key.split(":", 1)[0]


def evaluate(gold: Mapping[RecordKey, Hashable], predicted: Mapping[RecordKey, Hashable],
             keys: Mapping[RecordKey, Iterable[str]] | None = None,
             ignored_keys: Collection[str] = (),
             pair_rules: Mapping[frozenset, str] | None = None) -> Evaluation:
    """Score predicted clusters (record → cluster id) against gold entities (record → entity).

    Every gold-listed record must have a predicted cluster (``KeyError``
    otherwise: the caller decides how to report records that were lost).
    With ``keys`` (record → its match keys), a per-rule breakdown is added;
    ``ignored_keys`` (e.g. keys refused as too common) never count as shared.
    With ``pair_rules`` (``frozenset({a, b})`` → the rule that accepted the
    pair), the breakdown is by the rule that joined each predicted pair
    instead, ``transitive`` for pairs joined only through other records.
    """
    missing = [r for r in gold if r not in predicted]
    if missing:
        raise KeyError(f"{len(missing)} gold-listed record(s) have no predicted cluster, e.g. {missing[0]}")
    entity_sizes = Counter(gold.values())
    cluster_members: dict[Hashable, list[RecordKey]] = defaultdict(list)
    for rec in gold:
        cluster_members[predicted[rec]].append(rec)
    both = Counter((gold[r], predicted[r]) for r in gold)
    pairs_true = sum(pairs(n) for n in entity_sizes.values())
    pairs_predicted = sum(pairs(len(ms)) for ms in cluster_members.values())
    pairs_correct = sum(pairs(n) for n in both.values())
    overall = scores(pairs_true, pairs_predicted, pairs_correct)
    by_rule = None
    if pair_rules is not None:
        by_rule = _by_pair_rule(gold, cluster_members, pair_rules, pairs_true)
    elif keys is not None:
        by_rule = _by_rule(gold, cluster_members, keys, set(ignored_keys), pairs_true)
    return Evaluation(scores=overall, clusters=len(cluster_members), by_rule=by_rule)


def _by_rule(gold: Mapping[RecordKey, Hashable], cluster_members: Mapping[Hashable, list[RecordKey]],
             keys: Mapping[RecordKey, Iterable[str]], ignored: set[str], pairs_true: int) -> dict[str, Scores]:
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    usable = {}
    for members in cluster_members.values():
        if len(members) < 2:
            continue
        for m in members:
            if m not in usable:
                usable[m] = {k for k in keys.get(m, ()) if not k.startswith(SIGNATURE) and k not in ignored}
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                kinds = {key_kind(k) for k in usable[a] & usable[b]} or {TRANSITIVE}
                same = gold[a] == gold[b]
                for kind in kinds:
                    predicted[kind] += 1
                    correct[kind] += same
    return {kind: scores(pairs_true, predicted[kind], correct[kind]) for kind in predicted}


def _by_pair_rule(gold: Mapping[RecordKey, Hashable], cluster_members: Mapping[Hashable, list[RecordKey]],
                  pair_rules: Mapping[frozenset, str], pairs_true: int) -> dict[str, Scores]:
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for members in cluster_members.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                rule = pair_rules.get(frozenset((a, b)), TRANSITIVE)
                predicted[rule] += 1
                correct[rule] += gold[a] == gold[b]
    return {rule: scores(pairs_true, predicted[rule], correct[rule]) for rule in predicted}


GOLD_HEADER = ["source", "local_id", "entity"]


def parse_gold(lines: Iterable[str], name: str = "gold file") -> dict[RecordKey, str]:
    """Read ``source,local_id,entity`` CSV lines into record → entity; ValueError says where it is wrong."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{name}: empty; expected the header {','.join(GOLD_HEADER)}")
    header = [h.strip().lstrip("\ufeff") for h in header]
    if header != GOLD_HEADER:
        raise ValueError(f"{name}: header is {','.join(header)!r}; expected {','.join(GOLD_HEADER)!r}")
    gold: dict[RecordKey, str] = {}
    for row in reader:
        if not row or not any(v.strip() for v in row):
            continue
        line = reader.line_num
        if len(row) != 3:
            raise ValueError(f"{name}, line {line}: expected 3 values (source,local_id,entity), got {len(row)}")
        source, local_id, entity = (v.strip() for v in row)
        if not source or not local_id or not entity:
            raise ValueError(f"{name}, line {line}: source, local_id and entity must all be given")
        previous = gold.setdefault((source, local_id), entity)
        if previous != entity:
            raise ValueError(f"{name}, line {line}: {source}/{local_id} is listed under two entities "
                             f"({previous!r} and {entity!r})")
    return gold
