"""Which holdings record (MFHD) belongs to which bibliographic record: 004 → 001, within one member.

Either may arrive first, in one feed or two, so the link is kept as data:
one row per member record with its 001 (bibliographic records) or its 004
(holdings records).  The dedupe stage updates the rows of the records it
reads, asks which bibliographic records gained or lost holdings (their
entries are merged again) and, at merge time, which holdings records belong
to a cluster's members.  A holdings record whose 004 names no bibliographic
record of its member is an orphan: kept, not lost, and reported by
``unioncat quality`` until its bibliographic record arrives.

A member may send its holdings in a feed of their own, declared as a second
source with ``holdings_for: <bib source>`` in sources.yaml: the store is
given those pairs (``feeds``) and a holdings record of such a feed points at
the 001s of its bibliographic source instead of its own.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Column, Index, String, Table, and_, case, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from storage.db import metadata, write_lock

from .model import Record

__all__ = ["LinkStore"]

RecordKey = tuple[str, str]   # (source, local_id)

record_links = Table(
    "record_links",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("control_number", String(255), nullable=False, default=""),   # 001 of a bibliographic record
    Column("holdings_of", String(255), nullable=False, default=""),      # 004 of a holdings record
)
Index("ix_record_links_control", record_links.c.source, record_links.c.control_number)
Index("ix_record_links_holdings_of", record_links.c.source, record_links.c.holdings_of)

_CHUNK = 400


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _by_source(pairs) -> dict[str, list[str]]:
    """``(source, value)`` pairs as sorted values per source: plain IN lists compile far faster than tuple IN."""
    out: dict[str, list[str]] = {}
    for source, value in sorted(pairs):
        out.setdefault(source, []).append(value)
    return out


def _upsert(conn):
    """INSERT … ON CONFLICT (source, local_id) DO UPDATE, for many rows at once (SQLite or PostgreSQL)."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    stmt = dialect.insert(record_links)
    return stmt.on_conflict_do_update(index_elements=["source", "local_id"],
                                      set_={"control_number": stmt.excluded.control_number,
                                            "holdings_of": stmt.excluded.holdings_of})


class LinkStore:
    """The 004 → 001 links of every member record, and the questions dedupe and quality ask of them."""

    def __init__(self, engine: Engine, feeds: Mapping[str, str] | None = None):
        """``feeds`` maps a holdings feed's source id to the source whose bibliographic records it holds."""
        self.engine = engine
        self._lock = write_lock(engine)
        self.feeds = dict(feeds or {})
        self._fed_by: dict[str, list[str]] = {}
        for feed, bib_source in sorted(self.feeds.items()):
            self._fed_by.setdefault(bib_source, []).append(feed)

    def _bib_source(self, source: str) -> str:
        """Where the bibliographic records a holdings record of ``source`` names live."""
        return self.feeds.get(source, source)

    def update(self, changed: Iterable[tuple[RecordKey, Record | None]]) -> set[RecordKey]:
        """Store the links of changed records (None: deleted); return the bibliographic records whose
        holdings changed — those a holdings record now points at or pointed at before."""
        return self.bibs_for(self.store(changed))

    def store(self, changed: Iterable[tuple[RecordKey, Record | None]]) -> set[tuple[str, str]]:
        """Store the links of changed records (None: deleted); return the ``(bib source, 001)`` their holdings
        records point at now or pointed at before — resolved by :meth:`bibs_for`, which the dedupe stage
        calls once per pass for the targets no bibliographic record of the pass already answers."""
        changed = list(changed)
        if not changed:
            return set()
        targets: set[tuple[str, str]] = set()   # (source, bib control number)
        rows = []
        for (source, local_id), record in changed:
            if record is None:
                continue
            if record.kind == "holdings":
                targets.add((self._bib_source(source), record.holdings_of))
                rows.append(dict(source=source, local_id=local_id, control_number="", holdings_of=record.holdings_of))
            elif record.kind == "bibliographic":
                rows.append(dict(source=source, local_id=local_id, control_number=record.control_number,
                                 holdings_of=""))
        # a bibliographic record's old row never points anywhere: only holdings records and deletions
        # can leave an old target behind, and only deletions remove rows (the others are overwritten)
        maybe_linked = [k for k, rec in changed if rec is None or rec.kind == "holdings"]
        gone = [k for k, rec in changed if rec is None]
        with self._lock, self.engine.begin() as conn:
            for source, ids in _by_source(maybe_linked).items():
                for part in _chunks(ids):
                    old = conn.execute(select(record_links.c.holdings_of).where(
                        record_links.c.source == source, record_links.c.local_id.in_(part),
                        record_links.c.holdings_of != ""))
                    targets.update((self._bib_source(source), h) for (h,) in old)
            for part in _chunks(gone):
                conn.execute(delete(record_links).where(tuple_(record_links.c.source, record_links.c.local_id)
                                                        .in_(part)))
            if rows:
                conn.execute(_upsert(conn), rows)
        return targets

    def bibs_for(self, targets: Iterable[tuple[str, str]]) -> set[RecordKey]:
        """The bibliographic records with these ``(source, 001)``."""
        out: set[RecordKey] = set()
        with self.engine.connect() as conn:
            for source, controls in _by_source(targets).items():
                for part in _chunks(controls):
                    rows = conn.execute(select(record_links.c.local_id).where(
                        record_links.c.source == source, record_links.c.control_number.in_(part),
                        record_links.c.holdings_of == ""))
                    out.update((source, l) for (l,) in rows)
        return out

    def holdings_of(self, bibs: Iterable[Record]) -> dict[RecordKey, list[RecordKey]]:
        """The holdings records of each bibliographic record, by the bib's key: 004 = its 001, same member."""
        wanted = {(r.source, r.control_number): r.key for r in bibs if r.control_number and r.kind != "holdings"}
        out: dict[RecordKey, list[RecordKey]] = {}
        with self.engine.connect() as conn:
            for source, controls in _by_source(wanted).items():
                for part in _chunks(controls):
                    # its own holdings records first, then those of its holdings feeds
                    for holder in [source, *self._fed_by.get(source, ())]:
                        rows = conn.execute(select(record_links.c.local_id, record_links.c.holdings_of).where(
                            record_links.c.source == holder, record_links.c.holdings_of.in_(part))
                            .order_by(record_links.c.local_id))
                        for local_id, bib in rows:
                            out.setdefault(wanted[(source, bib)], []).append((holder, local_id))
        return out

    def orphans(self, source: str | None = None) -> list[tuple[str, str, str]]:
        """``(source, holdings local id, 004)`` of holdings records whose bibliographic record is not here
        (in their own source, or for a holdings feed in the source it holds for)."""
        bib = record_links.alias("bib")
        feeds = [f for f in self.feeds if source in (None, f)]
        # a feed's bibliographic records live in another source; every other source's in its own
        bib_source = case(*((record_links.c.source == f, self.feeds[f]) for f in feeds),
                          else_=record_links.c.source) if feeds else record_links.c.source
        query = (select(record_links.c.source, record_links.c.local_id, record_links.c.holdings_of)
                 .select_from(record_links.outerjoin(bib, and_(bib.c.source == bib_source,
                                                               bib.c.control_number == record_links.c.holdings_of,
                                                               bib.c.holdings_of == "")))
                 .where(record_links.c.holdings_of != "", bib.c.local_id.is_(None))
                 .order_by(record_links.c.source, record_links.c.local_id))
        if source is not None:
            query = query.where(record_links.c.source == source)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
