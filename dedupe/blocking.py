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

import zlib
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from typing import Any, Protocol

import numpy as np

from normaliser.store import paused_gc
from runtime.workerpool import worker_pool

from .blockstore import Batch, block_keys, to_score
from .classpairs import ClassPair
from .evidence import Pair
from .features import Features
from .prefilter import SMALL, co_held, copies_may_keep, may_keep
from .verdicts import Verdicts

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
    """What scoring a batch of blocks needs (sent to each scoring worker once, pickled)."""

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
    ``workers`` > 1 scores batches in that many worker processes (``emit`` still runs here, the one
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


#: Batches a pass must have before workers score them: a pool's start (a forkserver and its workers, the
#: scoring modules imported in them) costs more than scoring a batch or two in this process.
POOL_AFTER = 3


def _scored(work: _Work, wanted: list[str] | None, workers: int, after: int) -> Iterator[tuple[int | None, tuple]]:
    """The walk position and outcome of each batch of blocks, scored here or by ``workers`` worker processes
    (a pass of fewer than :data:`POOL_AFTER` batches always here), in batch order; a worker killed mid-pass
    stops the pass with :class:`runtime.workerpool.WorkerDied` (the pairs of the batches before it are
    stored, and the pass goes on from its walk position when run again)."""
    batches = _batches(work.blocks, wanted, work.refused, work.part, after)
    first = list(islice(batches, POOL_AFTER))
    if workers <= 1 or len(first) < POOL_AFTER:
        for upto, batch in chain(first, batches):
            yield upto, _score_batch(batch, work)
        return
    with worker_pool(workers, "dedupe's scoring", preload=[__name__], initializer=partial(_adopt, work)) as pool:
        pending: deque = deque()
        for upto, batch in chain(first, batches):       # at most two batches a worker in flight: memory bounded
            pending.append((upto, pool.submit(_in_worker, batch)))
            while len(pending) >= 2 * workers:
                upto_, future = pending.popleft()
                yield upto_, future.result()
        for upto, future in pending:
            yield upto, future.result()


def _adopt(work: _Work) -> None:
    """In a new worker: the pass's work, sent pickled — a :class:`dedupe.blockstore.BlockStore` arrives as
    its database's URL and opens its own engine there."""
    global _WORK
    _WORK = work


def _in_worker(batch: list[str]) -> tuple:
    """A worker's batch: scored with the collector held, as ``find_pairs`` holds it in one process."""
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
    if changed is None and verdicts.by_class:
        groups = verdicts.grouped(recs)
        if len(groups) < len(recs):
            _score_classes(key, groups, keys, feats, found, kept, verdicts, skip)
            return
    live, cover = _live(key, recs, keys, changed, skip)
    candidates = may_keep([feats[r] for r in recs], live, cover)
    found.prefiltered += int(np.count_nonzero(live)) - len(candidates)
    found.compared += len(candidates)
    keep = verdicts.keep
    for i, j in candidates:
        keep(recs[i], recs[j], kept)


def _score_classes(key: str, groups: list[list[RecordKey]], keys: Mapping[RecordKey, frozenset[str]],
                   feats: Mapping[RecordKey, Features], found: Found, kept: list, verdicts: Verdicts,
                   skip: Collection[str]) -> None:
    """A full pass's block over ``SMALL`` pairs whose records fall in fewer feature classes (``groups``: each
    class's records): the ownership masks and the pre-filter taken over one record a class, and ``keep``
    asked once for each pair of classes in each order their records come in — the same verdicts kept and
    the same pairs counted as the loop over records gives (records of one class carry the same keys, so
    the same earlier blocks; the pre-filter is a test of the two feature sets alone).
    """
    reps = [g[0] for g in groups]
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    bounds = [(min(g), max(g)) for g in groups]
    earlier: dict[str, list[int]] = defaultdict(list)
    owned_before = []
    for i, r in enumerate(reps):
        mine = _owning_earlier(key, r, keys, skip)
        owned_before.append(bool(mine))
        for k in mine:
            earlier[k].append(i)
    live = np.triu(~co_held(earlier.values(), len(reps)), 1)
    candidates = may_keep([feats[r] for r in reps], live, small=0)
    weight = np.outer(sizes, sizes)
    passed = int(sum(weight[i, j] for i, j in candidates))
    found.compared += passed
    found.prefiltered += int(weight[live].sum()) - passed
    keep = verdicts.keep
    for i, g in enumerate(groups):          # pairs within a class: live when no earlier block owns them
        if len(g) > 1 and not owned_before[i]:
            n = len(g) * (len(g) - 1) // 2
            if copies_may_keep(feats[g[0]]):
                found.compared += n
                keep(g[0], g[1], kept)
            else:
                found.prefiltered += n
    for i, j in candidates:
        (lo_i, hi_i), (lo_j, hi_j) = bounds[i], bounds[j]
        if lo_i < hi_j:
            keep(lo_i, hi_j, kept)
        if lo_j < hi_i:
            keep(lo_j, hi_i, kept)


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
