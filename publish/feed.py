"""What the union catalogue publishes downstream, and in which sets.

Two kinds of item leave the catalogue (over OAI-PMH, in file exports):

``merged``
    one per cluster — the merged record with every member's holdings, under
    the cluster id.  A cluster retired (emptied or merged into another) stays
    listed as a deletion: its row keeps its last members, so set filters still
    find it.
``member``
    each member library's own record, byte for byte as harvested (the raw
    store), under ``(source, local_id)``; a member's withdrawal is a deletion.

Both are read in change order (their stores' sequence numbers), so a reader
resumes from the last sequence it saw — the position an OAI-PMH resumption
token or a resumable export carries.  They are read through the stores'
public methods (:class:`dedupe.store.ClusterStore`,
:class:`dedupe.members.MemberStore`, :class:`harvester.store.RawStore`), never
their tables; the MARC an item leaves as is :func:`publish.marc.item_marc`'s.

Sets (``setSpec`` syntax, so OAI-PMH can use them as they are):
``merged``, ``library:<id>``, ``region:<name>``, ``group:<id>`` select merged
records (those held by the library / a library of the region or group);
``members`` and ``members:<id>`` select member records.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from consortium.config import SourcesFile
from dedupe.model import Cluster
from dedupe.members import MemberStore
from dedupe.store import CLUSTER_SEQ, ClusterStore
from harvester.raw import RawRecord
from harvester.store import RawStore
from harvester.stores.records import RAW_SEQ, Changes, RawRow
from normaliser.store import RecordStore
from storage.db import get_value

from .marcout import UNIMARC_FORMATS

MERGED = "merged"
MEMBER = "member"
#: Member formats offered as MARC 21 (a source's ``format`` is one of consortium.config.FORMATS).
_MARC21_MEMBER_FORMATS = ("marc21", "oai_dc", "auto")
_MARC_SYNTAXES = ("iso2709", "marcxml")


@dataclass(frozen=True)
class PublishedSet:
    """One set: its spec, a human name, the kind of item and the libraries it narrows to (None = all)."""

    spec: str
    name: str
    kind: str
    sources: tuple[str, ...] | None = None


def set_slug(text: str) -> str:
    """A region name as a setSpec part (OAI-PMH allows only unreserved URI characters)."""
    return re.sub(r"[^A-Za-z0-9\-_.!~*'()]+", "-", text.strip()).strip("-") or "-"


def catalogue_sets(sources: SourcesFile) -> list[PublishedSet]:
    """Every set the catalogue offers, in a stable order."""
    out = [PublishedSet(MERGED, "Merged records: one per edition, with every member's holdings", MERGED),
           PublishedSet("members", "Member records: each library's own records as harvested", MEMBER)]
    for s in sources.sources:
        out.append(PublishedSet(f"library:{s.id}", f"Merged records held by {s.name}", MERGED, (s.id,)))
    for region in sources.regions:
        ids = tuple(s.id for s in sources.sources if s.region == region)
        out.append(PublishedSet(f"region:{set_slug(region)}", f"Merged records held in the region {region}",
                                MERGED, ids))
    for group in sources.groups:
        out.append(PublishedSet(f"group:{group.id}", f"Merged records held by {group.name}", MERGED,
                                tuple(group.members)))
    for s in sources.sources:
        out.append(PublishedSet(f"members:{s.id}", f"{s.name}: its own records as harvested", MEMBER, (s.id,)))
    return out


def find_set(sources: SourcesFile, spec: str) -> PublishedSet | None:
    for item in catalogue_sets(sources):
        if item.spec == spec:
            return item
    return None


def merged_set_specs(sources: SourcesFile, members: Iterable[tuple[str, str]]) -> list[str]:
    """The sets a merged record with these members belongs to (for OAI headers)."""
    held = {s for s, _ in members}
    by_id = sources.by_id()
    specs = [MERGED] + [f"library:{s}" for s in sorted(held)]
    regions = dict.fromkeys(by_id[s].region for s in sorted(held) if s in by_id)
    specs += [f"region:{set_slug(r)}" for r in regions]
    specs += [f"group:{g.id}" for g in sources.groups if held & set(g.members)]
    return specs


@dataclass
class Item:
    """One published item as read from its store."""

    kind: str
    seq: int
    datestamp: datetime
    deleted: bool
    cluster_id: str = ""                 # merged items
    members: list[tuple[str, str]] = field(default_factory=list)
    cluster: Cluster | None = None       # merged, live
    base: RawRecord | None = None        # merged, live: the display record's member record (None if gone)
    source: str = ""                     # member items
    local_id: str = ""
    raw: RawRecord | None = None         # member, live
    cluster_of: str | None = None        # member items: the cluster now holding it

    @property
    def is_unimarc(self) -> bool:
        if self.kind == MERGED:
            return self.cluster is not None and self.cluster.record.record_format in UNIMARC_FORMATS
        return self.raw is not None and self.raw.format in UNIMARC_FORMATS


@dataclass(frozen=True)
class Window:
    """Which items: kind, libraries (None = all), changed in [start, end), only those offered in ``marc``.

    ``marc`` narrows member and merged items to those that can be given as
    ``"marc21"`` or ``"unimarc"`` (deletions always pass: they carry no metadata).
    """

    kind: str
    sources: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    marc: str | None = None


def _naive(value: datetime | None) -> datetime | None:
    """Datestamps are stored as UTC; compare without the zone so every database agrees (None stays None)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _cluster_filters(w: Window) -> dict:
    """The window as the cluster store's ``changes_page`` arguments."""
    return {"sources": w.sources, "start": _naive(w.start), "end": _naive(w.end),
            "record_formats": UNIMARC_FORMATS if w.marc == "unimarc" else None}


def _member_window(w: Window) -> Changes:
    """The window as the raw store's :class:`Changes`."""
    start, end = _naive(w.start), _naive(w.end)
    if w.marc == "unimarc":
        return Changes(sources=w.sources, start=start, end=end, formats=UNIMARC_FORMATS)
    if w.marc == "marc21":
        return Changes(sources=w.sources, start=start, end=end, formats=_MARC21_MEMBER_FORMATS,
                       syntaxes=_MARC_SYNTAXES)
    return Changes(sources=w.sources, start=start, end=end)


class Published:
    """Reads published items from the cluster and raw stores, in change order."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clusters = ClusterStore(engine)
        self.members = MemberStore(engine)
        self.raw = RawStore(engine)
        self.records = RecordStore(engine)  # the models item_marc rebuilds unreadable member records from

    def count(self, w: Window) -> int:
        if w.kind == MERGED:
            return self.clusters.changes_page(0, 0, **_cluster_filters(w), total=True)[1]
        return self.raw.count_changes(_member_window(w))

    def count_upto(self, w: Window, seq: int) -> int:
        """Items of the window at or before ``seq`` (an export's or a list's cursor)."""
        if w.kind == MERGED:
            return self.count(w) - self.clusters.changes_page(seq, 0, **_cluster_filters(w), total=True)[1]
        return self.raw.count_changes(_member_window(w), upto=seq)

    def page(self, w: Window, after: int, limit: int, full: bool = True) -> list[Item]:
        """Up to ``limit`` items with sequence > ``after``; ``full`` loads the records too."""
        if w.kind == MERGED:
            rows, _ = self.clusters.changes_page(after, limit, **_cluster_filters(w), full=full)
            items = [_merged(*row) for row in rows]
            if full:
                self._add_bases(items)
            return items
        items = [_member(row, full) for row in self.raw.changes(after, limit, _member_window(w), payloads=full)]
        if full:
            found = self.members.clusters_of([(i.source, i.local_id) for i in items])
            for item in items:
                item.cluster_of = found.get((item.source, item.local_id))
        return items

    def merged_item(self, cluster_id: str) -> Item | None:
        row = self.clusters.change_of(cluster_id)
        if row is None:
            return None
        item = _merged(*row)
        self._add_bases([item])
        return item

    def member_item(self, source: str, local_id: str) -> Item | None:
        row = self.raw.get(source, local_id)
        if row is None:
            return None
        item = _member(row, True)
        item.cluster_of = self.members.cluster_of(source, local_id)
        return item

    def _add_bases(self, items: list[Item]) -> None:
        """Each live merged item's base: the raw record its display record came from (a page's in one go per source)."""
        found = self.raw.payloads((i.cluster.record.source, i.cluster.record.local_id)
                                  for i in items if i.cluster is not None)
        for item in items:
            if item.cluster is not None:
                item.base = found.get((item.cluster.record.source, item.cluster.record.local_id))

    def earliest(self) -> datetime | None:
        """The oldest datestamp of any item (each store's first change is its oldest)."""
        clusters, _ = self.clusters.changes_page(0, 1, full=False)
        found = [v for v in [c[2] for c in clusters] + [self.raw.earliest_change()] if v is not None]
        return min(_naive(v) for v in found) if found else None

    def last_seq(self, kind: str) -> int:
        """The last change sequence of the kind's store (its named counter)."""
        with self.engine.connect() as conn:
            return get_value(conn, CLUSTER_SEQ if kind == MERGED else RAW_SEQ)


def _merged(seq: int, cluster_id: str, updated_at: datetime, deleted: bool, members: list,
            cluster: Cluster | None) -> Item:
    return Item(kind=MERGED, seq=seq, datestamp=_naive(updated_at), deleted=deleted, cluster_id=cluster_id,
                members=members, cluster=cluster)


def _member(row: RawRow, full: bool) -> Item:
    raw = row.record
    return Item(kind=MEMBER, seq=row.seq, datestamp=_naive(row.changed_at), deleted=raw.deleted, source=raw.source,
                local_id=raw.local_id, raw=raw if full and not raw.deleted else None,
                members=[(raw.source, raw.local_id)])
