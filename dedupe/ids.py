"""Keeping cluster ids stable across builds.

Pure functions, no I/O: given the new groups (from :func:`dedupe.cluster.cluster`)
and the cluster each record was in last time, decide which old ids the groups
keep, retire or redirect.  Ids are permalinks, so the rules are:

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RecordKey = tuple[str, str]  # (source, local_id)


@dataclass
class Assignment:
    """The outcome of id assignment for one clustering pass."""

    clusters: dict[str, list[RecordKey]]          # cluster id → members
    redirects: dict[str, str]                     # retired id → id that took its records
    deleted: list[str]                            # ids whose records are all gone
    changed: set[str]                             # ids whose membership changed (or are new)


def first_choice(members: list[RecordKey]) -> str:
    """The id :func:`mint_id` tries first for a group (the store looks these up in batches)."""
    return "uc" + hashlib.sha1("\x1f".join(members[0]).encode("utf-8")).hexdigest()[:10]


def mint_id(members: list[RecordKey], taken: Callable[[str], bool]) -> str:
    """A new cluster id derived from its first member, so a rebuild from scratch finds the same ids."""
    candidate = base = first_choice(members)
    n = 1
    while taken(candidate):
        n += 1
        candidate = f"{base}{n}"
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
