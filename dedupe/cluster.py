"""Grouping member records into clusters and keeping cluster ids stable.

Pure functions, no I/O: given every record's keys and the cluster each record
was in last time, compute the new clusters and which old ids they keep,
retire or redirect.  Ids are permalinks, so the rules are:

* a cluster that keeps its members keeps its id;
* when clusters merge, the merged cluster keeps the *oldest* id and the other
  ids redirect to it;
* when a cluster splits, the largest part keeps the id and the others get new
  ids;
* an id whose records are all gone is deleted (no redirect).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .keys import SIGNATURE, WEAK_KINDS

RecordKey = tuple[str, str]  # (source, local_id)


class UnionFind:
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


@dataclass
class Grouping:
    """Connected components of records that share a usable key."""

    groups: list[list[RecordKey]]
    refused_keys: dict[str, int] = field(default_factory=dict)  # key → how many records carried it


def group_records(record_keys: Mapping[RecordKey, Iterable[str]], max_block: int = 500) -> Grouping:
    """Union records that share a key; refuse keys carried by more than ``max_block`` records.

    A huge block is a bad identifier (an ISBN printed in thousands of
    records, a generic title) rather than one edition; it is reported and
    never used to merge.  Weak keys (title keys) are vetoed between records
    whose signatures (``sig:`` entries, e.g. OCLC numbers) conflict: in such
    a block only records agreeing on their signature join, and records
    without one join only when the block is unambiguous.
    """
    by_key: dict[str, list[RecordKey]] = defaultdict(list)
    signature: dict[RecordKey, frozenset[str]] = {}
    for rec, keys in record_keys.items():
        sig = []
        for k in keys:
            if k.startswith(SIGNATURE):
                sig.append(k)
            else:
                by_key[k].append(rec)
        signature[rec] = frozenset(sig)
    uf = UnionFind()
    refused: dict[str, int] = {}
    for key, members in by_key.items():
        if len(members) > max_block:
            refused[key] = len(members)
            continue
        if len(members) < 2:
            continue
        parts = _compatible_parts(members, signature) if key.startswith(WEAK_KINDS) else [members]
        for part in parts:
            if len(part) < 2:
                continue
            for other in part[1:]:
                uf.union(part[0], other)
    components: dict[RecordKey, list[RecordKey]] = defaultdict(list)
    for rec in record_keys:
        components[uf.find(rec)].append(rec)
    groups = [sorted(g) for g in components.values()]
    groups.sort(key=lambda g: g[0])
    return Grouping(groups=groups, refused_keys=refused)


def _compatible_parts(members: list[RecordKey], signature: Mapping[RecordKey, frozenset[str]]) -> list[list[RecordKey]]:
    """Split a weak-key block so records with conflicting signatures never meet."""
    signed: list[tuple[set[str], list[RecordKey]]] = []
    unsigned: list[RecordKey] = []
    for m in members:
        sig = signature.get(m, frozenset())
        if not sig:
            unsigned.append(m)
            continue
        overlapping = [g for g in signed if g[0] & sig]
        if overlapping:
            first = overlapping[0]
            first[0].update(sig)
            first[1].append(m)
            for g in overlapping[1:]:
                first[0].update(g[0])
                first[1].extend(g[1])
                signed.remove(g)
        else:
            signed.append((set(sig), [m]))
    if len(signed) <= 1:
        return [unsigned + (signed[0][1] if signed else [])]
    # Several different manifestations share the title: a record without a
    # signature cannot be placed, so it stays on its own.
    return [g[1] for g in signed]


@dataclass
class Assignment:
    """The outcome of id assignment for one clustering pass."""

    clusters: dict[str, list[RecordKey]]          # cluster id → members
    redirects: dict[str, str]                     # retired id → id that took its records
    deleted: list[str]                            # ids whose records are all gone
    changed: set[str]                             # ids whose membership changed (or are new)


def mint_id(members: list[RecordKey], taken: Callable[[str], bool]) -> str:
    """A new cluster id derived from its first member, so a rebuild from scratch finds the same ids."""
    basis = "\x1f".join(members[0])
    digest = hashlib.sha1(basis.encode("utf-8")).hexdigest()
    candidate = "uc" + digest[:10]
    n = 1
    while taken(candidate):
        n += 1
        candidate = f"uc{digest[:10]}{n}"
    return candidate


def assign_ids(
    groups: list[list[RecordKey]],
    previous: Mapping[RecordKey, str],
    previous_members: Mapping[str, set[RecordKey]],
    created_order: Mapping[str, int],
    id_exists: Callable[[str], bool] = lambda _id: False,
) -> Assignment:
    """Give each group an id, preferring ids its members already had.

    ``previous`` maps a record to its old cluster id; ``previous_members``
    maps an old id to its old member set; ``created_order`` ranks old ids
    by age (smaller is older).  ``id_exists`` tells whether an id was ever
    used (including retired ids) so new ids never collide with permalinks.
    """
    order = sorted(range(len(groups)), key=lambda i: (-len(groups[i]), groups[i][0]))
    claimed: dict[str, list[RecordKey]] = {}
    minted: set[str] = set()
    for i in order:
        members = groups[i]
        candidates = {previous[m] for m in members if m in previous}
        candidates = [c for c in candidates if c not in claimed]
        if candidates:
            # oldest id wins; on equal age, the id that keeps most members
            best = min(candidates, key=lambda c: (created_order.get(c, 1 << 62),
                                                  -len(previous_members.get(c, set()) & set(members)), c))
            claimed[best] = members
        else:
            new = mint_id(members, lambda c: c in claimed or c in minted or c in previous_members or id_exists(c))
            minted.add(new)
            claimed[new] = members
    redirects: dict[str, str] = {}
    deleted: list[str] = []
    where: dict[RecordKey, str] = {m: cid for cid, ms in claimed.items() for m in ms}
    for old_id, old_members in previous_members.items():
        if old_id in claimed:
            continue
        targets: dict[str, int] = defaultdict(int)
        for m in old_members:
            if m in where:
                targets[where[m]] += 1
        if targets:
            redirects[old_id] = max(sorted(targets), key=lambda t: targets[t])
        else:
            deleted.append(old_id)
    changed = {cid for cid, ms in claimed.items() if set(ms) != previous_members.get(cid)}
    return Assignment(clusters=claimed, redirects=redirects, deleted=sorted(deleted), changed=changed)
