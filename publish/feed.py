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
token or a resumable export carries.

Sets (``setSpec`` syntax, so OAI-PMH can use them as they are):
``merged``, ``library:<id>``, ``region:<name>``, ``group:<id>`` select merged
records (those held by the library / a library of the region or group);
``members`` and ``members:<id>`` select member records.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from consortium.config import SourcesFile
from harvester.raw import RawRecord
from harvester.stores.records import raw_records

from dedupe.model import Cluster
from dedupe.store import _cluster, clusters, dedupe_members

MERGED = "merged"
MEMBER = "member"
UNIMARC_FORMATS = ("unimarc", "cnmarc")


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


def _naive(value: datetime) -> datetime:
    """Datestamps are stored as UTC; compare without the zone so every database agrees."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _merged_where(w: Window) -> list:
    cond = []
    if w.sources is not None:
        cond.append(or_(*[clusters.c.members.like(f'%["{_like_literal(s)}", %', escape="\\")
                          for s in w.sources]) if w.sources else False)
    if w.start is not None:
        cond.append(clusters.c.updated_at >= _naive(w.start))
    if w.end is not None:
        cond.append(clusters.c.updated_at < _naive(w.end))
    if w.marc == "unimarc":
        cond.append(or_(clusters.c.deleted.is_(True),
                        *[clusters.c.data.like(f'%"record_format": "{f}"%') for f in UNIMARC_FORMATS]))
    return cond


def _member_where(w: Window) -> list:
    cond = []
    if w.sources is not None:
        cond.append(raw_records.c.source.in_(w.sources))
    if w.start is not None:
        cond.append(raw_records.c.changed_at >= _naive(w.start))
    if w.end is not None:
        cond.append(raw_records.c.changed_at < _naive(w.end))
    if w.marc == "unimarc":
        cond.append(or_(raw_records.c.deleted.is_(True), raw_records.c.format.in_(UNIMARC_FORMATS)))
    elif w.marc == "marc21":
        cond.append(or_(raw_records.c.deleted.is_(True),
                        and_(raw_records.c.format.not_in(UNIMARC_FORMATS),
                             raw_records.c.syntax.in_(("iso2709", "marcxml")))))
    return cond


class Published:
    """Reads published items from the cluster and raw stores, in change order."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def count(self, w: Window) -> int:
        table, cond = (clusters, _merged_where(w)) if w.kind == MERGED else (raw_records, _member_where(w))
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*cond)).scalar_one())

    def count_upto(self, w: Window, seq: int) -> int:
        """Items of the window at or before ``seq`` (an export's or a list's cursor)."""
        table = clusters if w.kind == MERGED else raw_records
        cond = (_merged_where(w) if w.kind == MERGED else _member_where(w)) + [table.c.seq <= seq]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*cond)).scalar_one())

    def page(self, w: Window, after: int, limit: int, full: bool = True) -> list[Item]:
        """Up to ``limit`` items with sequence > ``after``; ``full`` loads the records too."""
        if w.kind == MERGED:
            cols = [clusters.c.seq, clusters.c.id, clusters.c.updated_at, clusters.c.deleted, clusters.c.members]
            if full:
                cols += [clusters.c.data, clusters.c.match_keys, clusters.c.work_key]
            query = select(*cols).where(clusters.c.seq > after, *_merged_where(w)).order_by(clusters.c.seq)
        else:
            cols = [raw_records.c.seq, raw_records.c.source, raw_records.c.local_id, raw_records.c.changed_at,
                    raw_records.c.deleted, raw_records.c.format, raw_records.c.syntax, raw_records.c.datestamp]
            if full:
                cols += [raw_records.c.payload, dedupe_members.c.cluster_id]
            query = select(*cols).where(raw_records.c.seq > after, *_member_where(w)).order_by(raw_records.c.seq)
            if full:
                query = query.select_from(raw_records.outerjoin(dedupe_members, and_(
                    dedupe_members.c.source == raw_records.c.source,
                    dedupe_members.c.local_id == raw_records.c.local_id)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [self._merged(r, full) if w.kind == MERGED else self._member(r, full) for r in rows]

    def iterate(self, w: Window, after: int = 0, batch: int = 500, full: bool = True) -> Iterator[Item]:
        """Every item of the window after ``after``, page by page."""
        while True:
            items = self.page(w, after, batch, full)
            yield from items
            if len(items) < batch:
                return
            after = items[-1].seq

    def merged_item(self, cluster_id: str) -> Item | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(clusters).where(clusters.c.id == cluster_id)).mappings().first()
        return None if row is None else self._merged(row, True)

    def member_item(self, source: str, local_id: str) -> Item | None:
        query = (select(raw_records, dedupe_members.c.cluster_id)
                 .select_from(raw_records.outerjoin(dedupe_members, and_(
                     dedupe_members.c.source == raw_records.c.source,
                     dedupe_members.c.local_id == raw_records.c.local_id)))
                 .where(raw_records.c.source == source, raw_records.c.local_id == local_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._member(row, True)

    def raws(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RawRecord]:
        """Live raw records for ``(source, local_id)`` keys (a page's base records, in one go per source)."""
        by_source: dict[str, list[str]] = {}
        for s, l in keys:
            by_source.setdefault(s, []).append(l)
        out: dict[tuple[str, str], RawRecord] = {}
        with self.engine.connect() as conn:
            for source, ids in by_source.items():
                for i in range(0, len(ids), 500):
                    rows = conn.execute(select(raw_records).where(
                        raw_records.c.source == source, raw_records.c.deleted.is_(False),
                        raw_records.c.local_id.in_(ids[i:i + 500]))).mappings()
                    for r in rows:
                        out[(source, r["local_id"])] = _raw(r)
        return out

    def earliest(self) -> datetime | None:
        with self.engine.connect() as conn:
            a = conn.execute(select(func.min(clusters.c.updated_at))).scalar()
            b = conn.execute(select(func.min(raw_records.c.changed_at))).scalar()
        found = [v for v in (a, b) if v is not None]
        return min(_naive(v) for v in found) if found else None

    def last_seq(self, kind: str) -> int:
        table = clusters if kind == MERGED else raw_records
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(table.c.seq))).scalar() or 0)

    @staticmethod
    def _merged(row, full: bool) -> Item:
        members = [tuple(m) for m in json.loads(row["members"])]
        cluster = _cluster(row) if full and not row["deleted"] else None
        return Item(kind=MERGED, seq=row["seq"], datestamp=_naive(row["updated_at"]), deleted=bool(row["deleted"]),
                    cluster_id=row["id"], members=members, cluster=cluster)

    @staticmethod
    def _member(row, full: bool) -> Item:
        raw = _raw(row) if full and not row["deleted"] else None
        return Item(kind=MEMBER, seq=row["seq"], datestamp=_naive(row["changed_at"]), deleted=bool(row["deleted"]),
                    source=row["source"], local_id=row["local_id"], raw=raw,
                    cluster_of=row.get("cluster_id") if full else None, members=[(row["source"], row["local_id"])])


def _raw(row) -> RawRecord:
    return RawRecord(source=row["source"], local_id=row["local_id"], payload=row["payload"], syntax=row["syntax"],
                     format=row["format"], datestamp=row["datestamp"], deleted=bool(row["deleted"]))

