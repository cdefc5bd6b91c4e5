"""Union-find over accepted pairs that never chains across a veto.

Plain union-find is transitive: A≈B and B≈C put A and C together even when
A and C are another volume of each other.  Here pairs are applied from the
surest down, and two clusters only join when *every* record of one is
compatible with every record of the other:

* no two records from one member (a member's own duplicates are reported,
  not merged);
* at most one format, edition and volume per cluster (the ``sig:``
  entries of the records' keys; ``features.SINGLE_VALUED``);
* no identifiers of one kind that conflict (``features.ids_conflict``: the
  two clusters' ISBNs share none; two records' OCLC numbers or LCCNs share none);
* no pair that was vetoed or that staff marked "never merge".

Staff "always merge" pairs are applied last (they join whole clusters) and
only "never merge" stops them.  The result is independent of input order.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from operator import itemgetter

from .features import SINGLE_VALUED, ids_conflict

RecordKey = tuple[str, str]
Edge = tuple[RecordKey, RecordKey, float, str]   # a, b, score, rule
ID_KINDS = ("isbn:", "oclc:", "lccn:")


class _Component:
    """A cluster being built: what every later join must be compatible with."""

    __slots__ = ("members", "sources", "attrs", "ids")

    def __init__(self, rec: RecordKey, keys: Iterable[str]):
        self.members = [rec]
        self.sources = {rec[0]}
        self.attrs: dict[str, set[str]] = {}
        ids: dict[str, set[str]] = {}
        for k in keys:        # hot: one pass, plain dicts (a component per record of every accepted pair)
            head = k[:5]
            if head[:4] == "sig:":
                kind, _, value = k[4:].partition(":")
                if kind in SINGLE_VALUED:
                    self.attrs.setdefault(kind, set()).add(value)
            elif head in ID_KINDS:
                kind, _, value = k.partition(":")
                ids.setdefault(kind, set()).add(value)
        self.ids: list[dict[str, set[str]]] = [ids] if ids else []

    def absorb(self, other: _Component) -> None:
        """Take in ``other``'s records (the caller checked they are compatible)."""
        self.members.extend(other.members)
        self.sources |= other.sources
        for kind, values in other.attrs.items():
            self.attrs.setdefault(kind, set()).update(values)
        self.ids.extend(other.ids)


def _compatible(x: _Component, y: _Component, never: Mapping[RecordKey, set[RecordKey]],
                find, check_members: bool = True) -> str:
    """'' when x and y may join, else the reason they may not."""
    if never:
        ys = None
        for m in x.members:
            partners = never.get(m)
            if partners:
                ys = ys or set(y.members)
                if partners & ys:
                    return "never-merge"
    if not check_members:
        return ""
    if x.sources & y.sources:
        return "same-member"
    for kind in SINGLE_VALUED:
        a, b = x.attrs.get(kind), y.attrs.get(kind)
        if a != b and (a and b or kind == "vol"):
            return kind
    return ids_conflict(x.ids, y.ids) if x.ids and y.ids else ""


def cluster(record_keys: Mapping[RecordKey, Iterable[str]], edges: Iterable[Edge],
            never: Iterable[tuple[RecordKey, RecordKey]] = (), always: Iterable[tuple[RecordKey, RecordKey]] = (),
            vetoed: Iterable[tuple[RecordKey, RecordKey]] = ()) -> tuple[list[list[RecordKey]], list[tuple]]:
    """Group records; returns (groups sorted, rejected edges as (a, b, rule, reason)).

    ``edges`` are accepted pairs with a score; ``vetoed`` pairs and
    ``never`` overrides keep their records apart; ``always`` overrides join.
    """
    parent: dict[RecordKey, RecordKey] = {}
    comps: dict[RecordKey, _Component] = {}

    def find(x: RecordKey) -> RecordKey:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def comp(x: RecordKey) -> _Component:
        c = comps.get(x)
        if c is None:
            c = comps[x] = _Component(x, record_keys.get(x, ()))
        return c

    never = list(never)
    apart, staff_never = _partners([*never, *vetoed]), _partners(never)

    def join(a: RecordKey, b: RecordKey, blocked: Mapping, check_members: bool) -> str:
        ra, rb = find(a), find(b)
        if ra == rb:
            return ""
        x, y = comp(ra), comp(rb)
        reason = _compatible(x, y, blocked, find, check_members)
        if reason:
            return reason
        if rb < ra:
            ra, rb, x, y = rb, ra, y, x
        parent[rb] = ra
        x.absorb(y)
        del comps[rb]
        return ""

    rejected = []
    for a, b, score, rule in _surest_first(edges):   # most join two copies already together: same parent, no call
        if a in record_keys and b in record_keys and parent.get(a, a) != parent.get(b, b):
            reason = join(a, b, apart, check_members=True)
            if reason:
                rejected.append((a, b, rule, reason))
    # last, so staff join whole clusters: applied first, a staff pair could claim a record whose
    # attributes then kept its own cluster-mates out (the record left its cluster)
    for a, b in sorted({tuple(sorted(p)) for p in always}):
        if a in record_keys and b in record_keys:
            reason = join(a, b, staff_never, check_members=False)
            if reason:
                rejected.append((a, b, "always-merge", reason))
    groups: dict[RecordKey, list[RecordKey]] = defaultdict(list)
    for rec in record_keys:
        groups[find(rec)].append(rec)
    return sorted(sorted(g) for g in groups.values()), rejected


def _surest_first(edges: Iterable[Edge]) -> list[Edge]:
    """The edges by score, highest first, then by (a, b): two stable sorts on C key functions (a full pass
    sorts ~7 edges a record; a key tuple built per edge in Python cost more than the sorting)."""
    ordered = sorted(edges, key=itemgetter(0, 1))
    ordered.sort(key=itemgetter(2), reverse=True)   # reverse keeps equal scores in (a, b) order: still stable
    return ordered


def _partners(pairs: Iterable[tuple[RecordKey, RecordKey]]) -> dict[RecordKey, set[RecordKey]]:
    """Each record → the records it must stay apart from (both directions)."""
    partners: dict[RecordKey, set[RecordKey]] = defaultdict(set)
    for a, b in pairs:
        partners[a].add(b)
        partners[b].add(a)
    return partners
