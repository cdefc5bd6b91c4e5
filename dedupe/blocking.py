"""Blocking: which pairs get scored, a batch of blocks at a time, and only pairs with a changed record.

Every record carries several blocking keys (see ``features.blocking_keys``);
two records are compared when they share one.  A block larger than
``max_block`` (a generic title, a bad ISBN printed in thousands of records,
a very common surname in one year) is never compared all-pairs: it is
refused and reported, or, with a ``window``, split — its records sorted by
title and each compared with the next ``window`` ones (sorted
neighbourhood), so a common surname in one year still finds the other
copies of a book without costing n².  Incremental: a pass compares each changed record with the
members of its blocks — records that did not change keep their stored pairs,
so changing 1% of the records costs about 1% of a full pass.

Blocks are read from a :class:`Blocks` source (the indexed ``dedupe_keys``
table joined to the features in a build, :class:`MemoryBlocks` in tests) a
batch at a time — members, features and keys together — and a
pair two blocks share is scored in the first of them (in key order) that is
not refused: nothing holds the set of pairs, so memory is one batch of
blocks whatever the catalogue's size.  Inside a block, ``prefilter`` drops
the pairs ``compare`` would certainly not keep before Python sees them.
"""
from __future__ import annotations

import gc
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from normaliser.store import paused_gc
from .blockstore import Batch, block_keys, feature_class, shared_text, to_score
from .classpairs import ClassPair
from .evidence import Pair
from .features import Features
from .prefilter import SMALL, co_held, may_keep
from .score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, Verdict, compare

RecordKey = tuple[str, str]
#: Blocks read and scored together (one query for their members, one for the members' keys and features).
BATCH = 500


class Blocks(Protocol):
    """Where blocks come from: :class:`dedupe.blockstore.BlockStore` or :class:`MemoryBlocks`."""

    def oversized(self, keys: Collection[str] | None, over: int) -> dict[str, int]: ...

    def plan_walk(self, then: Callable[[Any], None] | None = None) -> int: ...

    def walk(self, size: int, after: int = 0) -> Iterator[tuple[int, list[str]]]: ...

    def batch(self, keys: Iterable[str], changed: Collection[RecordKey] | None) -> Batch: ...

    def keys_of(self, records: Iterable[RecordKey]) -> dict[RecordKey, frozenset[str]]: ...


class MemoryBlocks:
    """:class:`Blocks` over keys and features held in memory (tests, the quality benchmark)."""

    def __init__(self, all_keys: Mapping[RecordKey, Iterable[str]], features: Mapping[RecordKey, Features]):
        self._keys = {r: frozenset(block_keys(ks)) for r, ks in all_keys.items()}
        self._features = features
        self._blocks: dict[str, list[RecordKey]] = defaultdict(list)
        for r in sorted(self._keys):
            for k in self._keys[r]:
                self._blocks[k].append(r)
        self._walk: list[str] = []

    def oversized(self, keys: Collection[str] | None, over: int) -> dict[str, int]:
        wanted = self._blocks if keys is None else keys
        return {k: len(self._blocks[k]) for k in wanted if len(self._blocks.get(k, ())) > over}

    def plan_walk(self, then: Callable[[Any], None] | None = None) -> int:
        self._walk = sorted((k for k, rs in self._blocks.items() if len(rs) > 1), key=lambda k: (self._blocks[k][0], k))
        if then:
            then(None)
        return len(self._walk)

    def walk(self, size: int, after: int = 0) -> Iterator[tuple[int, list[str]]]:
        for i in range(after, len(self._walk), size):
            keys = self._walk[i:i + size]
            yield i + len(keys), keys

    def batch(self, keys: Iterable[str], changed: Collection[RecordKey] | None) -> Batch:
        members = to_score({k: [r for r in self._blocks[k] if r in self._features] for k in keys
                            if k in self._blocks}, changed)
        records = {r for rs in members.values() for r in rs}
        return Batch(members, {r: self._features[r] for r in records}, {r: self._keys[r] for r in records})

    def keys_of(self, records: Iterable[RecordKey]) -> dict[RecordKey, frozenset[str]]:
        return {r: self._keys[r] for r in records if r in self._keys}


@dataclass
class Found:
    pairs: list[Pair] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)   # block key → records carrying it (not compared)
    split: dict[str, int] = field(default_factory=dict)     # oversized blocks compared in title windows
    compared: int = 0                                        # pairs scored by compare()
    prefiltered: int = 0                                     # block pairs the pre-filter settled without compare()
    candidates: int = 0                                      # unchanged records loaded to compare with


@dataclass
class _Work:
    """What scoring a batch of blocks needs (inherited by forked workers, never pickled)."""

    blocks: Blocks
    changed: Collection[RecordKey] | None
    refused: dict[str, int]
    split: dict[str, int]
    window: int
    part: tuple[int, int] | None = None     # (k, n): only the blocks whose key hashes to partition k of n
    by_class: bool = False                  # kept verdicts as pairs of classes (``ClassPair``), see ``Verdicts``


_WORK: _Work | None = None
#: Where kept pairs go: (a batch of blocks' kept pairs, the walk position the batch reaches or None).
Emit = Callable[[list["Pair | ClassPair"], "int | None"], None]


def find_pairs(changed: Collection[RecordKey] | None, blocks: Blocks, max_block: int = 500,
               progress: Callable[[str], None] | None = None, emit: Emit | None = None,
               window: int = 0, workers: int = 1, part: tuple[int, int] | None = None,
               after: int | None = None, by_class: bool = False) -> Found:
    """Score every changed record (None: every record) against the records sharing one of its blocks.

    Kept pairs go to ``emit`` a batch of blocks at a time, with the walk position the batch reaches (None
    in an incremental pass), or into ``Found.pairs`` without one.  Every block (``changed`` None) is
    walked in the order :meth:`Blocks.plan_walk` numbered, planned here unless ``after`` says where to go
    on in a walk planned before (an interrupted pass, or partitions sharing one plan).
    Blocks over ``max_block`` are refused, or split into title windows of ``window`` records.
    ``workers`` > 1 scores batches in that many forked processes (``emit`` still runs here, the one
    writer); the pairs are the same.  ``part`` (k, n) scores only the blocks whose key hashes to
    partition k of n (:func:`key_part`): n such calls, in any processes, keep together exactly the
    pairs of one call without it — but a pair two split blocks share may be kept by two of them (see
    ``dedupe.partition``, whose writes skip a pair already stored).  ``by_class``: a verdict is kept once
    for each pair of feature classes (:class:`ClassPair`, what a build stores, ``dedupe.classpairs``) and
    only the pairs of split blocks' windows as pairs of records; ``blocks`` must then give stored classes.
    """
    found = Found()
    if changed is not None and not changed:
        return found
    wanted = None if changed is None else sorted({k for ks in blocks.keys_of(changed).values() for k in ks})
    oversized = blocks.oversized(wanted, max_block)
    if window > 0:
        found.split = oversized
    else:
        found.refused = oversized
    if changed is None and after is None:
        after = 0
        blocks.plan_walk()
    work = _Work(blocks, changed, found.refused, found.split, window, part, by_class)
    windowed: set[tuple[RecordKey, RecordKey]] = set()    # pairs scored in a split block (they may share two)
    seen_unchanged: set[RecordKey] = set()
    scored = _scored(work, wanted, workers, after or 0)
    while True:
        # A batch's features, verdicts and kept pairs hold no cycles and go with the batch; the collector's
        # passes over them cost ~17% of a full pass (200k member records: see BENCHMARKS.md), so it is held
        # while a batch is scored and stored and runs between batches (what SQLAlchemy leaves is still freed).
        with paused_gc():
            upto, outcome = next(scored, (None, None))
            if outcome is None:
                break
            kept, compared, prefiltered, unchanged, windows = outcome
            found.compared += compared
            found.prefiltered += prefiltered
            seen_unchanged |= unchanged
            if windowed:
                kept = [p for p in kept if type(p) is ClassPair or (p.a, p.b) not in windowed]
            windowed |= windows
            if emit:
                emit(kept, upto)
            else:
                found.pairs.extend(kept)
        if progress:
            progress(f"scored a batch of blocks{'' if upto is None else f' (walk position {upto:,})'}: "
                     f"{found.compared:,} pairs compared, {found.prefiltered:,} settled by the pre-filter")
    found.candidates = len(seen_unchanged)
    return found


def _scored(work: _Work, wanted: list[str] | None, workers: int, after: int) -> Iterator[tuple[int | None, tuple]]:
    """The walk position and outcome of each batch of blocks, scored here or by forked workers, in batch order."""
    global _WORK
    batches = _batches(work.blocks, wanted, work.refused, work.part, after)
    if workers <= 1:
        for upto, batch in batches:
            yield upto, _score_batch(batch, work)
        return
    import multiprocessing

    _WORK = work
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_forked) as pool:
            pending: list = []
            for upto, batch in batches:       # at most two batches a worker in flight: memory stays bounded
                pending.append((upto, pool.apply_async(_in_worker, (batch,))))
                while len(pending) >= 2 * workers:
                    upto_, result = pending.pop(0)
                    yield upto_, result.get()
            for upto, result in pending:
                yield upto, result.get()
    finally:
        _WORK = None


def _forked() -> None:
    """In a new worker: its own database connections (a pooled connection must not cross a fork), and the
    cyclic collector back on — the pool is forked inside a batch that holds it (``find_pairs``), and a worker
    that kept it off for good would keep whatever SQLAlchemy leaves in cycles for the whole pass."""
    gc.enable()
    engine = getattr(_WORK.blocks, "engine", None)
    if engine is not None:
        engine.dispose(close=False)


def _in_worker(batch: list[str]) -> tuple:
    """A forked worker's batch: scored with the collector held, as ``find_pairs`` holds it in one process."""
    with paused_gc():
        return _score_batch(batch)


def _score_batch(batch: list[str], work: _Work | None = None) -> tuple:
    """Score one batch of blocks: (kept pairs, pairs compared, pairs pre-filtered, unchanged records
    loaded, pairs scored in split blocks)."""
    work = work or _WORK
    changed = work.changed
    loaded = work.blocks.batch(batch, changed)
    members, keys, feats = loaded.members, loaded.keys, loaded.features
    unchanged = set() if changed is None else {r for r in feats if r not in changed}
    found = Found(refused=work.refused, split=work.split)
    kept: list[Pair] = []
    windowed: set[tuple[RecordKey, RecordKey]] = set()
    verdicts = Verdicts(feats, loaded.classes, work.by_class)
    for key in sorted(members):
        if key in work.split:
            _score_windows(key, members[key], keys, feats, changed, found, kept, work.window, windowed, verdicts)
        else:
            _score_block(key, members[key], keys, feats, changed, found, kept, verdicts)
    return kept, found.compared, found.prefiltered, unchanged, windowed


def key_part(key: str, parts: int) -> int:
    """The partition of a block key: a hash every process computes alike (``hash()`` is salted per process)."""
    return zlib.crc32(key.encode("utf-8")) % parts


def _batches(blocks: Blocks, wanted: list[str] | None, refused: Mapping[str, int],
             part: tuple[int, int] | None = None, after: int = 0) -> Iterator[tuple[int | None, list[str]]]:
    """The keys to score, ``BATCH`` at a time, each batch with the walk position it reaches: the wanted
    ones (position None), or every key two records share after walk position ``after`` (in the order of
    :meth:`Blocks.walk`: which batch scores a pair does not matter, its first shared key decides); with
    ``part``, only the keys of that partition."""
    def todo(keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in refused and (part is None or key_part(k, part[1]) == part[0])]

    if wanted is not None:
        mine = todo(wanted)
        for i in range(0, len(mine), BATCH):
            yield None, mine[i:i + BATCH]
        return
    mine, upto = [], after
    for upto, keys in blocks.walk(BATCH, after):
        mine += todo(keys)
        if mine and (part is None or len(mine) >= BATCH):   # a partition gathers its share of several
            yield upto, mine
            mine = []
    if mine:
        yield upto, mine


def _score_block(key: str, members: list[RecordKey], keys: Mapping[RecordKey, frozenset[str]],
                 feats: Mapping[RecordKey, Features], changed: Collection[RecordKey] | None,
                 found: Found, kept: list[Pair], verdicts: Verdicts) -> None:
    """Score the pairs of one block (members in record order) that no earlier block scores."""
    recs = [r for r in members if r in feats]
    skip = found.refused.keys() | found.split.keys()
    if len(recs) * (len(recs) - 1) // 2 <= SMALL:
        # most blocks: a few records, all their pairs go to compare (see ``prefilter.SMALL``); sets, not matrices
        earlier = [_owning_earlier(key, r, keys, skip) for r in recs]
        keep, n = verdicts.keep, 0
        for i, a in enumerate(recs):
            mine = earlier[i]
            for j in range(i + 1, len(recs)):
                b = recs[j]
                if mine.isdisjoint(earlier[j]) and (changed is None or a in changed or b in changed):
                    keep(a, b, kept)
                    n += 1
        found.compared += n
        return
    live, cover = _live(key, recs, keys, changed, skip)
    candidates = may_keep([feats[r] for r in recs], live, cover)
    found.prefiltered += int(np.count_nonzero(live)) - len(candidates)
    found.compared += len(candidates)
    keep = verdicts.keep
    for i, j in candidates:
        keep(recs[i], recs[j], kept)


def _live(key: str, recs: list[RecordKey], keys: Mapping[RecordKey, frozenset[str]],
          changed: Collection[RecordKey] | None, skip: Collection[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The pairs (upper triangle) this block scores, and the changed records among ``recs`` (None: all).

    A pair two blocks share is scored in the first of them (in key order) that is not refused or split,
    so the pairs whose records share an earlier such key are dropped here, before the pre-filter — the
    copies of one book share a title, an author and year and an ISBN block, and each pair would otherwise
    be pre-filtered in each of them.  An incremental pass scores only pairs with a changed record.
    """
    n = len(recs)
    earlier: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(recs):
        for k in _owning_earlier(key, r, keys, skip):
            earlier[k].append(i)
    live = np.triu(~co_held(earlier.values(), n), 1)
    if changed is None:
        return live, None
    mine = np.fromiter((r in changed for r in recs), dtype=bool, count=n)
    live &= mine[:, None] | mine[None, :]
    return live, np.flatnonzero(mine)


def _owning_earlier(key: str, r: RecordKey, keys: Mapping[RecordKey, frozenset[str]],
                    skip: Collection[str]) -> set[str]:
    """``r``'s blocks before ``key`` that score their pairs (not refused or split): a pair whose records
    share one of them belongs there, not to ``key`` — the one ownership rule, for sets and for matrices."""
    return {k for k in keys.get(r, ()) if k < key and k not in skip}


def _score_windows(key: str, members: list[RecordKey], keys: Mapping[RecordKey, frozenset[str]],
                   feats: Mapping[RecordKey, Features], changed: Collection[RecordKey] | None, found: Found,
                   kept: list[Pair], window: int, windowed: set[tuple[RecordKey, RecordKey]],
                   verdicts: Verdicts) -> None:
    """Score an oversized block by sorted neighbourhood: each record with the next ``window`` in title order.

    A pair that also shares a block of normal size is left to that block; one that shares two split
    blocks is scored once (``windowed``).  The exact pre-filter runs over a stretch of records at a time
    (and the stretch after it), so the window pairs ``compare`` would certainly drop cost C, not Python:
    without it, 77 split blocks at 100k LoC records made 321,166 ``compare`` calls for 4,249 candidates.
    """
    recs = sorted((r for r in members if r in feats), key=lambda r: (feats[r]["t"] or "", r))
    skip = found.refused.keys() | found.split.keys()
    step = max(window, 32)      # records a pre-filter call starts pairs from (it sees 2 × step)
    for start in range(0, len(recs), step):
        chunk = recs[start:start + 2 * step]
        pairs = [(i, j) for i, j in may_keep([feats[r] for r in chunk]) if i < step and j - i <= window]
        half = min(step, len(recs) - start)
        found.prefiltered += sum(min(window, len(recs) - 1 - p) for p in range(start, start + half)) - len(pairs)
        for i, j in pairs:
            a, b = chunk[i], chunk[j]
            a_, b_ = (a, b) if a < b else (b, a)
            if (changed is not None and a_ not in changed and b_ not in changed) or (a_, b_) in windowed:
                continue
            if any(k not in skip for k in keys.get(a_, frozenset()) & keys.get(b_, frozenset())):
                continue    # a block of normal size scores this pair
            windowed.add((a_, b_))
            found.compared += 1
            verdicts.keep_record(a_, b_, kept)


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
        self.keep = self._keep_class if by_class else self.keep_record

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
