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

from collections.abc import Iterable, Mapping
from operator import itemgetter

import numpy as np

from .features import SINGLE_VALUED, ids_conflict

RecordKey = tuple[str, str]
Edge = tuple[RecordKey, RecordKey, float, str]   # a, b, score, rule
ID_KINDS = ("isbn:", "oclc:", "lccn:")
_NO_IDS: tuple[dict[str, frozenset[str]], ...] = ()


class _Traits:
    """What a record's keys say about joining it: its single-valued attributes and identifiers.

    Parsed once for each distinct key list (the copies of one book at many members share theirs) and shared
    by the components made from them, so nothing here is changed in place: a join that adds a value builds
    new sets.  The identifiers are kept as ``features.ids_conflict`` reads them, only compacted: the ISBNs of
    every record in one set (it compares them cluster-wide) and each distinct set of the other kinds once
    (records compared one by one: a copy equal to one already held finds the same conflicts)."""

    __slots__ = ("attrs", "isbns", "others", "ids")

    def __init__(self, attrs: dict[str, frozenset[str]], isbns: frozenset[str],
                 others: tuple[dict[str, frozenset[str]], ...]):
        self.attrs, self.isbns, self.others = attrs, isbns, others
        self.ids = [{"isbn": isbns}, *others] if isbns else list(others)

    @classmethod
    def parse(cls, keys: Iterable[str]) -> _Traits:
        attrs: dict[str, set[str]] = {}
        ids: dict[str, set[str]] = {}
        for k in keys:        # one pass, plain dicts
            head = k[:5]
            if head[:4] == "sig:":
                kind, _, value = k[4:].partition(":")
                if kind in SINGLE_VALUED:
                    attrs.setdefault(kind, set()).add(value)
            elif head in ID_KINDS:
                kind, _, value = k.partition(":")
                ids.setdefault(kind, set()).add(value)
        isbns = frozenset(ids.pop("isbn", ()))
        others = ({kind: frozenset(values) for kind, values in ids.items()},) if ids else _NO_IDS
        return cls({kind: frozenset(values) for kind, values in attrs.items()}, isbns, others)

    def joined(self, other: _Traits) -> _Traits:
        """The traits of two joined clusters (``self`` itself when ``other`` adds nothing, as for a copy)."""
        if other is self:
            return self
        attrs = self.attrs
        for kind, values in other.attrs.items():
            mine = attrs.get(kind)
            if mine is None or not values <= mine:
                attrs = {**attrs, kind: values if mine is None else mine | values}
        isbns = self.isbns if other.isbns <= self.isbns else self.isbns | other.isbns
        added = tuple(ids for ids in other.others if ids not in self.others)
        if attrs is self.attrs and isbns is self.isbns and not added:
            return self
        return _Traits(attrs, isbns, self.others + added)


class _Component:
    """A cluster being built: its records (numbers), their members and traits."""

    __slots__ = ("members", "sources", "traits")

    def __init__(self, rec: int, source: str, traits: _Traits):
        self.members = [rec]
        self.sources = {source}
        self.traits = traits


def _compatible(x: _Component, y: _Component) -> str:
    """'' when x and y may join as far as their members and traits go, else the reason they may not."""
    if not x.sources.isdisjoint(y.sources):
        return "same-member"
    tx, ty = x.traits, y.traits
    if tx is ty and len(tx.others) <= 1:   # copies of one book: one set of identifiers meets itself
        return ""
    for kind in SINGLE_VALUED:
        a, b = tx.attrs.get(kind), ty.attrs.get(kind)
        if a != b and (a and b or kind == "vol"):
            return kind
    return ids_conflict(tx.ids, ty.ids) if tx.ids and ty.ids else ""


class _Forest:
    """The union-find of one :func:`cluster` call, over the records numbered in key order (an int compares and
    hashes for less than a key), so a root — always the smallest number of its cluster — is its smallest key."""

    def __init__(self, record_keys: Mapping[RecordKey, Iterable[str]]):
        self.record_keys = record_keys
        self.keys = sorted(record_keys)
        self.number = {k: i for i, k in enumerate(self.keys)}
        self.parent = list(range(len(self.keys)))
        self.comps: dict[int, _Component] = {}
        self.parsed: dict[tuple[str, ...], _Traits] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def comp(self, x: int) -> _Component:
        """The cluster rooted at ``x`` (a record alone gets its own, from its keys' traits, when first asked)."""
        c = self.comps.get(x)
        if c is None:
            own = tuple(self.record_keys[self.keys[x]])
            traits = self.parsed.get(own)
            if traits is None:
                traits = self.parsed[own] = _Traits.parse(own)
            c = self.comps[x] = _Component(x, self.keys[x][0], traits)
        return c

    def kept_apart(self, x: _Component, rx: int, y: _Component, ry: int, never: Mapping[int, set[int]]) -> bool:
        """Whether a record of x (rooted at ``rx``) must stay apart from one of y (at ``ry``): the smaller side's
        partners are looked up, so a cluster growing a copy at a time is not walked at every join."""
        if len(y.members) < len(x.members):
            x, ry = y, rx
        return any(partners and any(self.find(p) == ry for p in partners)
                   for partners in map(never.get, x.members))

    def join(self, a: int, b: int, never: Mapping[int, set[int]], check_members: bool) -> str:
        """Join the clusters of a and b unless they must stay apart: '' or the reason."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ""
        x, y = self.comp(ra), self.comp(rb)
        if never and self.kept_apart(x, ra, y, rb, never):
            return "never-merge"
        reason = _compatible(x, y) if check_members else ""
        if reason:
            return reason
        if rb < ra:
            ra, rb, x, y = rb, ra, y, x
        self.parent[rb] = ra
        del self.comps[rb]
        traits = x.traits.joined(y.traits)     # the smaller root's first, as its identifiers are read
        if len(x.members) < len(y.members):    # the larger takes in the smaller
            x, y = y, x
        x.members += y.members
        x.sources |= y.sources
        x.traits, self.comps[ra] = traits, x
        return ""

    def groups(self) -> list[list[RecordKey]]:
        """The clusters, in key order: each sorted, the clusters by their first key."""
        groups: dict[int, list[RecordKey]] = {}
        for i, k in enumerate(self.keys):
            groups.setdefault(self.find(i), []).append(k)
        return list(groups.values())


def cluster(record_keys: Mapping[RecordKey, Iterable[str]], edges: Iterable[Edge],
            never: Iterable[tuple[RecordKey, RecordKey]] = (), always: Iterable[tuple[RecordKey, RecordKey]] = (),
            vetoed: Iterable[tuple[RecordKey, RecordKey]] = ()) -> tuple[list[list[RecordKey]], list[tuple]]:
    """Group records; returns (groups sorted, rejected edges as (a, b, rule, reason)).

    ``edges`` are accepted pairs with a score; ``vetoed`` pairs and
    ``never`` overrides keep their records apart; ``always`` overrides join.
    """
    forest = _Forest(record_keys)
    keys, number, parent = forest.keys, forest.number, forest.parent
    never = _numbered(number, never)
    apart, staff_never = _partners([*never, *_numbered(number, vetoed)]), _partners(never)
    rejected = []
    for i, j, _, rule in _surest_first(_edges(edges, number)):   # most join two copies already together
        if parent[i] != parent[j]:                                  # (same parent): no call
            reason = forest.join(i, j, apart, check_members=True)
            if reason:
                rejected.append((keys[i], keys[j], rule, reason))
    # last, so staff join whole clusters: applied first, a staff pair could claim a record whose
    # attributes then kept its own cluster-mates out (the record left its cluster)
    for i, j in sorted({(min(p), max(p)) for p in _numbered(number, always)}):
        reason = forest.join(i, j, staff_never, check_members=False)
        if reason:
            rejected.append((keys[i], keys[j], "always-merge", reason))
    return forest.groups(), rejected


def _edges(edges: Iterable[Edge], number: Mapping[RecordKey, int]) -> list[tuple[int, int, float, str]]:
    """The edges between records of ``number``, their ends as numbers."""
    get = number.get
    return [(i, j, score, rule) for a, b, score, rule in edges
            if (i := get(a)) is not None and (j := get(b)) is not None]


def _surest_first(edges: list[tuple[int, int, float, str]]) -> Iterable[tuple[int, int, float, str]]:
    """The edges by score, highest first, then by their ends (record numbers: key order), ties in their given
    order: numpy's stable ``lexsort`` over the columns (a full pass sorts ~7 edges a record; sorting the
    edges themselves, by their tuples of keys, cost more than the rest of the loop)."""
    n = len(edges)

    def column(at: int, dtype: type) -> np.ndarray:
        return np.fromiter(map(itemgetter(at), edges), dtype=dtype, count=n)

    order = np.lexsort((column(1, np.int64), column(0, np.int64), -column(2, np.float64)))
    return map(edges.__getitem__, order.tolist())


def _numbered(number: Mapping[RecordKey, int], pairs: Iterable[tuple[RecordKey, RecordKey]]
              ) -> list[tuple[int, int]]:
    """``pairs`` between records of ``number``, as their numbers (a pair reaching outside changes nothing)."""
    return [(number[a], number[b]) for a, b in pairs if a in number and b in number]


def _partners(pairs: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
    """Each record → the records it must stay apart from (both directions)."""
    partners: dict[int, set[int]] = {}
    for a, b in pairs:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    return partners
