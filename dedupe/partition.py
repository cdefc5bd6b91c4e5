"""A dedupe pass's parallel parts as partitions that any process (an rq worker, another machine) can take.

Three steps of a pass are independent record by record and share only the database:

* **staging** (a full pass) — partition k of n stages the records whose ``seq`` falls in its k-th of the
  pass's range: their features and blocking keys, match keys, holdings links and authority forms
  (``staging.stage_part``).  Each batch commits only while the partition's staging attempt is the current
  one (``fullpass.fenced``), and a re-run partition skips the records an earlier run of its range stored,
  so it ends where one uninterrupted run ends.  The pass's staged mark moves once, when every partition is
  done.
* **scoring** — partition k of n scores the blocks whose key hashes to k (``blocking.key_part``) and
  writes its kept pairs itself, a batch of blocks at a time.  The first shared key still decides which
  block scores a pair, so the n partitions keep exactly the pairs of one pass; only a pair two *split*
  blocks share (sorted-neighbourhood windows, see ``blocking._score_windows``) may be kept by two
  partitions, and the writes skip a pair already stored — which is also what makes a re-run partition
  (its worker killed half-way) end where one uninterrupted run ends.
* **merging** — partition k of n merges the pending clusters whose id falls in its k-th of the id space
  (ids are ``uc`` + a SHA-1 prefix, so ranges of their first hex digits are hash partitions) and writes
  them, each batch committed with its removal from the pending list: a re-run finishes what is left.

Clustering stays the one serial step (with planning the block walk).  Who runs the parts is the caller's:
a :data:`Fanout` gets one argument dict per partition and returns their results (``unioncat.jobs`` queues
them as rq jobs; ``unioncat.pipeline.dedupe_part`` runs one in any process).  Nothing here imports rq.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from .blocking import Found, find_pairs
from .blockstore import BlockStore
from .classpairs import ClassPair
from .evidence import EvidenceStore, Pair

RecordKey = tuple[str, str]
#: (task, one argument dict per partition) → one result dict per partition, in the same order.
Fanout = Callable[[str, list[dict]], list[dict]]
#: Hex digits of a cluster id's hash that the merge ranges split on (16**4 ranges at most).
_ID_DIGITS = 4
#: What a staging partition counts (``staging.stage_part``), summed over the partitions.
STAGE_COUNTS = ("records_changed", "stored", "holdings_changed", "authorities_changed")


@dataclass(frozen=True)
class Partitions:
    """How many partitions a pass's staging, scoring and merging are cut into, and who runs them."""

    parts: int
    fanout: Fanout

    def stage(self, after: int, ceiling: int, epoch: int) -> dict[str, int]:
        """Stage the records of a full pass after ``seq`` ``after`` up to ``ceiling``, one task a range of
        seq (:func:`seq_ranges`), as staging attempt ``epoch``; their counts summed."""
        results = self.fanout("stage", [{"part": k, "parts": self.parts, "after": lo, "upto": hi, "epoch": epoch}
                                        for k, (lo, hi) in enumerate(seq_ranges(after, ceiling, self.parts))])
        return {name: sum(r[name] for r in results) for name in STAGE_COUNTS}

    def score(self, changed: Collection[RecordKey] | None, max_block: int, window: int) -> Found:
        """Score every block (``changed`` None) or the blocks of ``changed``, one task a partition; the
        pairs are stored by the partitions, the counts summed here."""
        listed = None if changed is None else sorted(changed)
        results = self.fanout("score", [{"part": k, "parts": self.parts, "changed": listed,
                                         "max_block": max_block, "window": window} for k in range(self.parts)])
        found = Found(refused=results[0]["refused"], split=results[0]["split"])
        for r in results:
            found.compared += r["compared"]
            found.prefiltered += r["prefiltered"]
            found.candidates += r["candidates"]
        return found

    def merge(self, batch: int) -> int:
        """Merge every pending cluster, one task a partition of the id space; the clusters written."""
        results = self.fanout("merge", [{"part": k, "parts": self.parts, "batch": batch} for k in range(self.parts)])
        return sum(r["written"] for r in results)


def score_part(evidence: EvidenceStore, args: dict, progress: Callable[[str], None] | None = None) -> dict:
    """Score one partition's blocks and store its kept pairs (a pair already stored is skipped)."""
    changed = None if args["changed"] is None else {(s, i) for s, i in args["changed"]}

    def emit(pairs: list[Pair | ClassPair], _upto: int | None) -> None:
        evidence.add_pairs(pairs, again=True)    # in key order: two partitions lock rows in one order (no deadlock)

    # every partition walks the one plan the pass made before fanning out (``build._score``)
    found = find_pairs(changed, BlockStore(evidence.engine), max_block=args["max_block"], progress=progress,
                       emit=emit, window=args["window"], part=(args["part"], args["parts"]),
                       after=0 if changed is None else None, by_class=True)
    first = args["part"] == 0    # every partition finds the same oversized blocks: one sends them back
    return {"compared": found.compared, "prefiltered": found.prefiltered, "candidates": found.candidates,
            "refused": found.refused if first else {}, "split": found.split if first else {}}


def seq_ranges(after: int, ceiling: int, parts: int) -> list[tuple[int, int]]:
    """``(after, upto]`` ranges of record ``seq`` that cut ``(after, ceiling]`` into ``parts`` of equal width
    (fewer when it is narrower).  Seqs are dense in a first build; later ones leave gaps where records
    changed, spread over the range, so equal widths hold about equal numbers of records."""
    bounds = [after + (ceiling - after) * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def id_range(part: int, parts: int) -> tuple[str | None, str | None]:
    """The cluster ids of merge partition ``part`` of ``parts``: [from, before), None unbounded.

    Minted ids are ``uc`` + hex digits of a SHA-1 (``ids.first_choice``), spread evenly; the first and
    last ranges are open, so any other id still falls in exactly one partition.
    """
    top = 16 ** _ID_DIGITS

    def bound(k: int) -> str:
        return "uc" + format(k * top // parts, f"0{_ID_DIGITS}x")

    return (None if part == 0 else bound(part)), (None if part == parts - 1 else bound(part + 1))
