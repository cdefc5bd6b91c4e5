"""Deletion notices kept back until a run ends, so the safety stop can weigh them all.

An OAI-PMH member's ``status="deleted"`` notices of live records are stored here instead of applied
(:meth:`harvester.stores.records.RecordStore.apply` with ``defer_deletions``), committed with their
page so a resumed run still knows them; a record seen live again leaves the list.  The raw store
applies or drops them when the run's deletions are settled (:mod:`harvester.safety`).
"""
from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, select
from sqlalchemy.engine import Connection

from storage.db import chunks, metadata

from ..raw import RawRecord

deferred_deletions = Table(
    "deferred_deletions",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("local_id", String(255), primary_key=True),
    Column("datestamp", String(32)),
    Column("run_id", Integer),
)


def keep(conn: Connection, deferred: list[RawRecord], alive: list[RawRecord], run_id: int | None) -> None:
    """Keep deletion notices back; a record that came (back) live is no longer to be deleted.

    The common case — nothing kept back for the source — costs one indexed lookup per page.
    """
    dd = deferred_deletions
    for source in {r.source for r in alive}:
        if conn.execute(select(dd.c.local_id).where(dd.c.source == source).limit(1)).first() is None:
            continue
        ids = [r.local_id for r in alive if r.source == source]
        for chunk in chunks(ids):
            conn.execute(dd.delete().where(dd.c.source == source, dd.c.local_id.in_(chunk)))
    for rec in deferred:
        conn.execute(dd.delete().where(dd.c.source == rec.source, dd.c.local_id == rec.local_id))
    if deferred:
        conn.execute(dd.insert(), [dict(source=r.source, local_id=r.local_id, datestamp=r.datestamp, run_id=run_id)
                                   for r in deferred])


def waiting(conn: Connection, source: str) -> list[tuple[str, str | None]]:
    """(local id, datestamp) of the notices kept back for ``source``, in id order."""
    dd = deferred_deletions
    return [(r[0], r[1]) for r in conn.execute(select(dd.c.local_id, dd.c.datestamp)
                                               .where(dd.c.source == source).order_by(dd.c.local_id))]


def forget(conn: Connection, source: str) -> int:
    """Drop every notice kept back for ``source``; returns how many there were."""
    return conn.execute(deferred_deletions.delete().where(deferred_deletions.c.source == source)).rowcount or 0
