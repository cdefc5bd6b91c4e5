"""Verdicts of a batch of blocks: ``compare`` once for each ordered pair of feature classes, kept verdicts handed on.

Split from ``blocking`` (which walks the blocks and asks for verdicts here) so that each stays a size one can read.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from .blockstore import feature_class, shared_text
from .classpairs import ClassPair
from .evidence import Pair
from .features import Features
from .score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, Verdict, compare

RecordKey = tuple[str, str]


class Verdicts:
    """``compare`` of a batch's pairs, called once for each pair of distinct feature sets.

    Copies of one book held by many members often have equal features (100,010 member records of the
    synthetic consortium: 38,412 distinct feature sets), and ``compare`` reads nothing else but the two
    members' sources, which only tell a match from a member's own duplicate: so a pair whose records'
    features (source aside) equal those of a pair already compared, in the same order, gets that verdict,
    its decision told again from the sources.  The memo lives as long as the batch.  Every record of the
    batch is numbered up front (nearly all of them are in a scored pair), so a pair's lookup is two dict
    reads, not two method calls: a full pass at 100k decides ~1.3M pairs here.  ``by_class``: :meth:`keep`
    hands on a kept verdict once for its pair of classes (:class:`ClassPair`, ``dedupe.classpairs``), not
    once for each pair of records; the pairs of split blocks' windows stay pairs of records (:meth:`keep_record`).
    """

    def __init__(self, feats: Mapping[RecordKey, Features], classes: Mapping[RecordKey, int] | None = None,
                 by_class: bool = False):
        self.feats = feats
        if classes is None:               # the stored class of each record's features (see ``blockstore``)
            texts: dict[str, int] = {}
            classes = {r: texts.get(t) or texts.setdefault(t, feature_class(t))
                       for r, f in feats.items() for t in (shared_text(f),)}
        self._class = classes
        self._memo: dict[tuple[int, int], tuple[Verdict, bool, bool]] = {}   # verdict, kept, matched
        self._handed: set[tuple[int, int]] = set()     # pairs of classes handed on (``by_class``)
        self.by_class = by_class

    @property
    def keep(self) -> Callable[[RecordKey, RecordKey, list], None]:
        """What a block hands each of its pairs to: :meth:`_keep_class` or :meth:`keep_record`.  Looked up, not
        stored on the instance: a bound method kept there made a cycle, and each batch's memo, features and
        classes then waited for the cyclic collector (~13 ms a batch at 200k) instead of going when scored."""
        return self._keep_class if self.by_class else self.keep_record

    def grouped(self, recs: list[RecordKey]) -> list[list[RecordKey]]:
        """``recs`` by feature class, the classes in the order of their first record."""
        groups: dict[int, list[RecordKey]] = {}
        for r in recs:
            groups.setdefault(self._class[r], []).append(r)
        return list(groups.values())

    def _verdict(self, pair: tuple[int, int], a: RecordKey, b: RecordKey) -> tuple[tuple[Verdict, bool, bool], bool]:
        """The remembered (verdict, kept, matched) of a pair of classes, and whether it was compared just now.
        Whether a verdict is kept is remembered with it (~1.3M pairs a full pass at 100k, ~87% repeats)."""
        entry = self._memo.get(pair)
        if entry is not None:
            return entry, False
        verdict = compare(self.feats[a], self.feats[b])
        matched = verdict.decision in (MATCH, INTERNAL)
        entry = self._memo[pair] = (verdict, matched or (
            verdict.decision == VETO and verdict.features.get("title", 0) >= EVIDENCE_TITLE), matched)
        return entry, True

    def _keep_class(self, a: RecordKey, b: RecordKey, kept: list) -> None:
        """Score one pair; hand on its kept verdict as a :class:`ClassPair` the first time its classes meet.
        The two records are taken in Python's order, which a row's reading assumes (``classpairs.expand``),
        whatever order the database's collation gave the block's members in."""
        if b < a:
            a, b = b, a
        pair = (self._class[a], self._class[b])
        if pair in self._handed:
            return
        self._handed.add(pair)
        (verdict, kept_, matched), _ = self._verdict(pair, a, b)
        if kept_:
            kept.append(ClassPair(pair[0], pair[1], MATCH if matched else verdict.decision, verdict.rule,
                                  verdict.score, verdict.features))

    def keep_record(self, a: RecordKey, b: RecordKey, kept: list) -> None:
        """Score one pair (``compare(feats[a], feats[b])``, or its remembered verdict); append it to ``kept``
        when it matched, is a member's own duplicate, or is a look-alike veto."""
        pair = (self._class[a], self._class[b])
        (verdict, kept_, matched), fresh = self._verdict(pair, a, b)
        if not kept_:
            return
        if fresh:
            kept.append(Pair(a, b, verdict.decision, verdict.rule, verdict.score, verdict.features))
            return
        # a repeat: its decision told again from the two sources (a match, or a member's own duplicate)
        decision = (INTERNAL if self.feats[a]["src"] == self.feats[b]["src"] else MATCH) if matched \
            else verdict.decision
        kept.append(Pair(a, b, decision, verdict.rule, verdict.score, verdict.features))
