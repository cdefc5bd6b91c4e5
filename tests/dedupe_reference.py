"""The old all-pairs loop, kept as an oracle for the dedupe machinery at scale.

The machinery (indexed block store, batches of blocks, the exact pre-filter, forked workers,
partitions, clustering a batch of components at a time, split oversized blocks) must decide what
this plain loop decides: features computed from every live bibliographic record, blocks from the
matcher's own ``blocking_keys``, every pair of every block of at most ``max_block`` records scored
by ``score.compare`` (no pre-filter), the pairs kept by the rule the stage keeps them by, and the
clusters the constrained union-find (``cluster.cluster``: components of the accepted pairs that never
chain across a veto) makes of them.  Nothing here reads ``dedupe_keys``, ``dedupe_features`` or the
block walk.

The one difference allowed is the one the issue asks for: a block over the cap, which the loop
refused, is now split into title windows, so the built side may hold pairs the loop never scored —
and the clusters those pairs merge (or a veto among them keeps apart).  :func:`check` explains
such differences (a pair found only by the built side whose shared blocks are all over the cap)
and lists everything else as unexplained.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dedupe.cluster import cluster
from dedupe.evidence import EvidenceStore
from dedupe.features import SIGNATURE, Features, blocking_keys, record_features
from dedupe.score import EVIDENCE_TITLE, INTERNAL, MATCH, VETO, compare
from normaliser.model import Record

RecordKey = tuple[str, str]
PairKey = tuple[RecordKey, RecordKey]
Outcome = tuple[str, str, float]        # decision, rule, score


# -- the loop ---------------------------------------------------------------------------------

def features_of(records: Iterable[Record]) -> dict[RecordKey, Features]:
    """The matcher's features of every live bibliographic record (holdings and authorities never match)."""
    return {(r.source, r.local_id): record_features(r) for r in records
            if r is not None and r.kind == "bibliographic"}


def blocks_of(keys: Mapping[RecordKey, Iterable[str]]) -> dict[str, list[RecordKey]]:
    """Block key → its records in record order; the ``sig:`` entries are checks, not blocks."""
    blocks: dict[str, list[RecordKey]] = defaultdict(list)
    for record in sorted(keys):
        for key in dict.fromkeys(keys[record]):
            if not key.startswith(SIGNATURE):
                blocks[key].append(record)
    return dict(blocks)


def kept(a: Features, b: Features) -> Outcome | None:
    """``compare``'s verdict when the stage keeps it: a match, a member's own duplicate, or a veto
    between look-alikes (title ≥ ``EVIDENCE_TITLE``: the evidence that keeps them apart)."""
    v = compare(a, b)
    if v.decision in (MATCH, INTERNAL) or (v.decision == VETO and v.features.get("title", 0) >= EVIDENCE_TITLE):
        return v.decision, v.rule, v.score
    return None


def reference_pairs(feats: Mapping[RecordKey, Features], blocks: Mapping[str, list[RecordKey]],
                    max_block: int) -> dict[PairKey, Outcome]:
    """Every kept pair of every block of 2..``max_block`` records, each pair scored once (in the first
    of its shared blocks of that size, by key: the loop held a set of pairs; this keeps memory to the
    kept ones)."""
    small = {k for k, rs in blocks.items() if 1 < len(rs) <= max_block}
    mine: dict[RecordKey, set[str]] = defaultdict(set)
    for k in small:
        for r in blocks[k]:
            mine[r].add(k)
    out: dict[PairKey, Outcome] = {}
    for key in sorted(small):
        for a, b in itertools.combinations(blocks[key], 2):
            if min(mine[a] & mine[b]) != key:
                continue        # an earlier block of both scored it
            outcome = kept(feats[a], feats[b])
            if outcome:
                out[(a, b)] = outcome
    return out


def reference_clusters(keys: Mapping[RecordKey, list[str]], pairs: Mapping[PairKey, Outcome],
                       never: Iterable[PairKey] = (), always: Iterable[PairKey] = ()) -> list[list[RecordKey]]:
    """The clusters of the kept pairs: accepted pairs joined surest first, never across a veto."""
    edges = [(a, b, score, rule) for (a, b), (decision, rule, score) in pairs.items() if decision == MATCH]
    vetoed = [p for p, (decision, _, _) in pairs.items() if decision == VETO]
    groups, _ = cluster(keys, edges, never=never, always=always, vetoed=vetoed)
    return groups


@dataclass
class Reference:
    """What the loop made of one catalogue."""

    keys: dict[RecordKey, list[str]]
    blocks: dict[str, list[RecordKey]]
    max_block: int
    pairs: dict[PairKey, Outcome]
    clusters: list[list[RecordKey]]

    def oversized(self) -> dict[str, int]:
        """The blocks the loop refused for size, and their records."""
        return {k: len(rs) for k, rs in self.blocks.items() if len(rs) > self.max_block}


def reference(feats: Mapping[RecordKey, Features], max_block: int, never: Iterable[PairKey] = (),
              always: Iterable[PairKey] = ()) -> Reference:
    keys = {r: blocking_keys(f) for r, f in feats.items()}
    blocks = blocks_of(keys)
    pairs = reference_pairs(feats, blocks, max_block)
    return Reference(keys, blocks, max_block, pairs, reference_clusters(keys, pairs, never, always))


def override_pairs(evidence: EvidenceStore) -> tuple[list[PairKey], list[PairKey]]:
    """The staff overrides as (never-merge pairs, always-merge pairs), as :func:`cluster.cluster` takes them."""
    overrides = evidence.overrides()
    return ([(o.a, o.b) for o in overrides if o.kind == "never"],
            [(o.a, o.b) for o in overrides if o.kind == "always"])


def stored_clusters(keys: Mapping[RecordKey, list[str]], evidence: EvidenceStore) -> list[list[RecordKey]]:
    """Every record of ``keys`` clustered at once from the stored pairs and overrides: what clustering a
    batch of components at a time, or only what a change can reach, must end with."""
    pairs = {(a, b): (d, rule, score) for a, b, d, rule, score in evidence.all_pairs((MATCH, VETO))}
    never, always = override_pairs(evidence)
    # the overrides a pass applies (``recluster._groups``): those naming a record it clusters
    return reference_clusters(keys, pairs, [(a, b) for a, b in never if a in keys or b in keys],
                              [(a, b) for a, b in always if a in keys])


# -- the comparison ---------------------------------------------------------------------------

@dataclass
class Region:
    """Records the two sides group differently: the built clusters and reference clusters over them,
    and the pairs from oversized blocks inside it (none: unexplained)."""

    built: list[list[RecordKey]]
    reference: list[list[RecordKey]]
    pairs: list[PairKey] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """'merge' (each reference cluster inside one built one), 'split' (the other way) or 'reshaped'."""
        if len(self.built) < len(self.reference) and _inside(self.reference, self.built):
            return "merge"
        if len(self.reference) < len(self.built) and _inside(self.built, self.reference):
            return "split"
        return "reshaped"


def _inside(parts: list[list[RecordKey]], wholes: list[list[RecordKey]]) -> bool:
    where = {r: i for i, whole in enumerate(wholes) for r in whole}
    return all(len({where.get(r) for r in part}) == 1 for part in parts)


@dataclass
class Comparison:
    """The built store against the loop: pairs and clusters, differences explained or not."""

    records: int
    oversized: dict[str, int]
    only_built: dict[PairKey, Outcome] = field(default_factory=dict)
    only_reference: dict[PairKey, Outcome] = field(default_factory=dict)
    differing: dict[PairKey, tuple[Outcome, Outcome]] = field(default_factory=dict)   # (built, reference)
    explained_pairs: dict[PairKey, list[str]] = field(default_factory=dict)   # → their (oversized) shared blocks
    unexplained_pairs: list[PairKey] = field(default_factory=list)
    merged: list[Region] = field(default_factory=list)                 # explained cluster differences
    unexplained_clusters: list[Region] = field(default_factory=list)
    clusters: tuple[int, int] = (0, 0)                                 # (built, reference)

    @property
    def identical(self) -> bool:
        return not (self.only_built or self.only_reference or self.differing or self.merged
                    or self.unexplained_clusters)

    @property
    def explained(self) -> bool:
        return not (self.unexplained_pairs or self.unexplained_clusters)

    def summary(self) -> dict:
        kinds: dict[str, int] = defaultdict(int)
        for region in self.merged:
            kinds[region.kind] += 1
        return {"identical": self.identical, "explained": self.explained, "records": self.records,
                "clusters_built": self.clusters[0], "clusters_reference": self.clusters[1],
                "oversized_blocks": len(self.oversized), "only_built": len(self.only_built),
                "only_reference": len(self.only_reference), "differing": len(self.differing),
                "explained_pairs": len(self.explained_pairs), "unexplained_pairs": len(self.unexplained_pairs),
                "explained_clusters": dict(sorted(kinds.items())),
                "unexplained_clusters": len(self.unexplained_clusters)}


def compare_with(ref: Reference, built_pairs: Mapping[PairKey, Outcome],
                 built_clusters: Iterable[Iterable[RecordKey]]) -> Comparison:
    """Compare a built side (its kept pairs and clusters) with the loop's."""
    out = Comparison(records=len(ref.keys), oversized=ref.oversized())
    _compare_pairs(ref, built_pairs, out)
    built = [sorted(g) for g in built_clusters]
    out.clusters = (len(built), len(ref.clusters))
    by_record: dict[RecordKey, list[PairKey]] = defaultdict(list)
    for a, b in out.explained_pairs:
        by_record[a].append((a, b))
    for region in _regions(built, ref.clusters):
        inside = {r for g in region.built for r in g} | {r for g in region.reference for r in g}
        region.pairs = sorted(p for r in inside for p in by_record.get(r, ()) if p[1] in inside)
        (out.merged if region.pairs else out.unexplained_clusters).append(region)
    return out


def _compare_pairs(ref: Reference, built: Mapping[PairKey, Outcome], out: Comparison) -> None:
    """Fill the pair differences; a pair only the built side found is explained when every block its
    records share is over the cap (the loop refused them all), else it is a stray pair."""
    for pair, outcome in built.items():
        theirs = ref.pairs.get(pair)
        if theirs is None:
            out.only_built[pair] = outcome
        elif _outcome(theirs) != _outcome(outcome):
            out.differing[pair] = (outcome, theirs)
    out.only_reference = {p: o for p, o in ref.pairs.items() if p not in built}
    for (a, b) in out.only_built:
        shared = sorted(set(ref.keys.get(a, ())) & set(ref.keys.get(b, ())) & ref.blocks.keys())
        if shared and all(len(ref.blocks[k]) > ref.max_block for k in shared):
            out.explained_pairs[(a, b)] = shared
        else:
            out.unexplained_pairs.append((a, b))
    out.unexplained_pairs += sorted(out.only_reference) + sorted(out.differing)


def _outcome(o: Outcome) -> tuple[str, str, float]:
    return o[0], o[1], round(o[2], 4)


def _regions(built: list[list[RecordKey]], reference: list[list[RecordKey]]) -> list[Region]:
    """The connected groups of records whose built cluster is not their reference cluster (a record on
    one side only counts as such a group too)."""
    ref_of = {r: i for i, g in enumerate(reference) for r in g}
    built_of = {r: i for i, g in enumerate(built) for r in g}
    same = {i for i, g in enumerate(reference)
            if len({built_of.get(r) for r in g}) == 1 and built_of.get(g[0]) is not None
            and len(built[built_of[g[0]]]) == len(g)}
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in set(ref_of) | set(built_of):
        if ref_of.get(r) in same:
            continue
        nodes = [n for n in (("r", ref_of.get(r)), ("b", built_of.get(r))) if n[1] is not None]
        for n in nodes[1:]:
            parent[find(n)] = find(nodes[0])
        find(nodes[0])
    regions: dict[tuple[str, int], Region] = {}
    for node in parent:
        region = regions.setdefault(find(node), Region([], []))
        (region.built if node[0] == "b" else region.reference).append(
            built[node[1]] if node[0] == "b" else reference[node[1]])
    return [regions[k] for k in sorted(regions)]


# -- a built catalogue ------------------------------------------------------------------------

def built_side(catalogue, records: Iterable[RecordKey]) -> tuple[dict[PairKey, Outcome], list[list[RecordKey]]]:
    """The stored kept pairs and the clusters the member records are assigned to (unassigned: alone)."""
    canonical = {r: r for r in records}        # one tuple a record, however many pairs name it
    pairs = {(canonical.get(a, a), canonical.get(b, b)): (d, rule, score)
             for a, b, d, rule, score in EvidenceStore(catalogue.engine).all_pairs((MATCH, INTERNAL, VETO))}
    groups: dict[object, list[RecordKey]] = defaultdict(list)
    for r, cid in catalogue.members.clusters_of(canonical).items():
        groups[cid if cid is not None else r].append(r)
    missing = set(canonical) - {r for g in groups.values() for r in g}
    return pairs, list(groups.values()) + [[r] for r in sorted(missing)]


def check(catalogue, max_block: int | None = None) -> Comparison:
    """Compare a built catalogue's stored pairs and clusters with the all-pairs loop over its records.

    ``max_block``: the loop's cap (default: the catalogue's ``max_block`` setting, the one its build
    used).  Staff overrides are applied on both sides.
    """
    cap = catalogue.settings.max_block if max_block is None else max_block
    live = (r for _, _, _, r in catalogue.records.changed_since(0, holdings_brief=True))
    feats = features_of(live)
    never, always = override_pairs(EvidenceStore(catalogue.engine))
    ref = reference(feats, cap, never=never, always=always)
    del feats
    return compare_with(ref, *built_side(catalogue, ref.keys))
