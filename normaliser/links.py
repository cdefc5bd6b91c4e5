"""Which holdings record (MFHD) belongs to which bibliographic record: 004 → 001, within one member.

Either may arrive first, in one feed or two, so the link is kept as data:
one row per member record with its 001 (bibliographic records) or its 004
(holdings records).  The dedupe stage updates the rows of the records it
reads, asks which bibliographic records gained or lost holdings (their
entries are merged again) and, at merge time, the Holding rows of the
holdings records of a batch's members (one joined query per member).  A holdings record whose 004 names no bibliographic
record of its member is an orphan: kept, not lost, and reported by
``unioncat quality`` until its bibliographic record arrives.

A member may send its holdings in a feed of their own, declared as a second
source with ``holdings_for: <bib source>`` in sources.yaml: the store is
given those pairs (``feeds``) and a holdings record of such a feed points at
the 001s of its bibliographic source instead of its own.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from sqlalchemy import Column, Index, String, Table, and_, any_, case, cast, delete, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from storage.db import insert_rows, metadata, write_lock

from .model import Holding, Record
from .store import RecordStore

__all__ = ["Link", "LinkStore"]

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


def _one_of(conn, column, values: list[str]):
    """``column IN values`` with the values as one bound parameter (a JSON array on SQLite, an array on
    PostgreSQL): SQLAlchemy's expanding IN processes every value again on each execution, which was a
    good share of what holdings cost the dedupe stage, and one parameter needs no chunks of 400."""
    if conn.dialect.name == "postgresql":
        return column == any_(cast(literal(list(values), postgresql.ARRAY(String)), postgresql.ARRAY(String)))
    each = func.json_each(literal(json.dumps(list(values)), String)).table_valued("value")
    return column.in_(select(each.c.value))


def _by_source(pairs) -> dict[str, list[str]]:
    """``(source, value)`` pairs as sorted values per source, for one set-membership query per source."""
    out: dict[str, list[str]] = {}
    for source, value in sorted(pairs):
        out.setdefault(source, []).append(value)
    return out


_LINK_COLUMNS = ("source", "local_id", "control_number", "holdings_of")


class Link(NamedTuple):
    """What the links table keeps of one changed member record.

    The dedupe stage holds these, not Records, between reading a batch and storing it: a Record is two
    dozen containers, and 2,000 of them alive at a time for nothing but two strings made the garbage
    collector sweep the stage's whole heap more often — most of what one MFHD per bib cost that pass."""

    source: str
    local_id: str
    kind: str | None             # the record's kind; None: it was deleted
    control_number: str = ""     # 001, of a bibliographic record
    holdings_of: str = ""        # 004, of a holdings record

    @classmethod
    def of(cls, key: RecordKey, record: Record | None) -> "Link":
        if record is None:
            return cls(key[0], key[1], None)
        if record.kind == "holdings":
            return cls(key[0], key[1], "holdings", holdings_of=record.holdings_of)
        return cls(key[0], key[1], record.kind, control_number=record.control_number)


class LinkStore:
    """The 004 → 001 links of every member record, and the questions dedupe and quality ask of them."""

    def __init__(self, engine: Engine, feeds: Mapping[str, str] | None = None):
        """``feeds`` maps a holdings feed's source id to the source whose bibliographic records it holds."""
        self.engine = engine
        self._lock = write_lock(engine)
        self._records = RecordStore(engine)
        self.feeds = dict(feeds or {})
        self._fed_by: dict[str, list[str]] = {}
        self._holders: dict[str, bool] = {}    # source → whether it has a holdings record linked (see _holds)
        for feed, bib_source in sorted(self.feeds.items()):
            self._fed_by.setdefault(bib_source, []).append(feed)

    def _bib_source(self, source: str) -> str:
        """Where the bibliographic records a holdings record of ``source`` names live."""
        return self.feeds.get(source, source)

    def update(self, changed: Iterable[tuple[RecordKey, Record | None]]) -> set[RecordKey]:
        """Store the links of changed records (None: deleted); return the bibliographic records whose
        holdings changed — those a holdings record now points at or pointed at before."""
        return self.bibs_for(self.store([Link.of(key, record) for key, record in changed]))

    def store(self, changed: list[Link]) -> set[tuple[str, str]]:
        """Store the links of changed records; return the ``(bib source, 001)`` their holdings records point
        at now or pointed at before — resolved by :meth:`bibs_for`, which the dedupe stage calls once per
        pass for the targets no bibliographic record of the pass already answers."""
        if not changed:
            return set()
        targets = {(self._bib_source(c.source), c.holdings_of) for c in changed if c.kind == "holdings"}
        rows = [(c.source, c.local_id, c.control_number, c.holdings_of) for c in changed
                if c.kind in ("holdings", "bibliographic")]
        # a bibliographic record's old row never points anywhere: only holdings records and deletions
        # can leave an old target behind, and only deletions remove rows (the others are overwritten)
        maybe_linked = [(c.source, c.local_id) for c in changed if c.kind in ("holdings", None)]
        gone = [(c.source, c.local_id) for c in changed if c.kind is None]
        with self._lock, self.engine.begin() as conn:
            for source, ids in _by_source(maybe_linked).items():
                old = conn.execute(select(record_links.c.holdings_of).where(
                    record_links.c.source == source, _one_of(conn, record_links.c.local_id, ids),
                    record_links.c.holdings_of != ""))
                targets.update((self._bib_source(source), h) for (h,) in old)
            for source, ids in _by_source(gone).items():
                conn.execute(delete(record_links).where(record_links.c.source == source,
                                                        _one_of(conn, record_links.c.local_id, ids)))
            # plain tuples, one driver executemany (a full pass writes a row for every member record)
            insert_rows(conn, record_links, _LINK_COLUMNS, rows, replace_on=("source", "local_id"))
        self._holders.update((c.source, True) for c in changed if c.kind == "holdings")
        return targets

    def bibs_for(self, targets: Iterable[tuple[str, str]]) -> set[RecordKey]:
        """The bibliographic records with these ``(source, 001)``."""
        out: set[RecordKey] = set()
        with self.engine.connect() as conn:
            for source, controls in _by_source(targets).items():
                # a holdings record's row has no control number: no need to ask for holdings_of = '',
                # which made SQLite walk every bibliographic row of the member by that index instead
                rows = conn.execute(select(record_links.c.local_id).where(
                    record_links.c.source == source, _one_of(conn, record_links.c.control_number, controls)))
                out.update((source, l) for (l,) in rows)
        return out

    def attached(self, bibs: Iterable[Record]) -> dict[RecordKey, list[list[Holding]]]:
        """The ``Holding`` rows of each live holdings record of each bibliographic record (004 = its 001, same
        member, or a holdings feed of it), by the bib's key: one query per member and batch, the rows read
        from the records table's own column (no holdings record decoded)."""
        wanted = {(r.source, r.control_number): r.key for r in bibs if r.control_number and r.kind != "holdings"}
        out: dict[RecordKey, list[list[Holding]]] = {}
        with self.engine.connect() as conn:
            for source, controls in _by_source(wanted).items():
                # its own holdings records first, then those of its holdings feeds
                for holder in [source, *self._fed_by.get(source, ())]:
                    if not self._holds(conn, holder):
                        continue
                    linked = select(record_links.c.source, record_links.c.local_id, record_links.c.holdings_of) \
                        .where(record_links.c.source == holder,
                               _one_of(conn, record_links.c.holdings_of, controls)).subquery()
                    # sorted here, not by ORDER BY: SQLite would then walk the member's whole primary key
                    rows = sorted(self._records.holdings_rows_of(conn, linked))
                    for _, bib, held in rows:
                        out.setdefault(wanted[(source, bib)], []).append(
                            [Holding(**h) for h in json.loads(held or "[]")])
        return out

    def _holds(self, conn, source: str) -> bool:
        """Whether ``source`` has a holdings record (MFHD) linked, asked once per source and store (one index
        seek; :meth:`store` notes the sources it links holdings records of).  Most members put their holdings
        in the bibliographic record (852, 952, 905) and send none: asking each of them again for every merge
        batch was ~11% of a full pass's merging (200k member records, 130 members)."""
        known = self._holders.get(source)
        if known is None:
            known = self._holders[source] = conn.execute(select(record_links.c.source).where(
                record_links.c.source == source, record_links.c.holdings_of > "").limit(1)).first() is not None
        return known

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
