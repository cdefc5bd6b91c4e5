"""storage.db's driver-level writes store what SQLAlchemy's own insert stores."""
from __future__ import annotations

import dataclasses
import re

from harvester.stores.records import raw_records
from normaliser.links import record_links
from storage.db import bound, insert_rows, utcnow

DATABASES = ("sqlite", "postgresql")


def test_insert_rows_with_a_bound_timestamp_stores_what_sqlalchemys_insert_stores(db):
    now = utcnow()
    values = dict(source="s", local_id="a", datestamp=None, deleted=False, format="marc21", syntax="iso2709",
                  payload=b"\x00\x1dpayload", content_hash="h", first_seen=now, seen_at=now, changed_at=now, seq=1,
                  run_id=None)
    with db.begin() as conn:
        conn.execute(raw_records.insert(), [values])
        stamp = bound(conn, raw_records.c.seen_at, now)
        mine = dict(values, local_id="b", seq=2, first_seen=stamp, seen_at=stamp, changed_at=stamp)
        insert_rows(conn, raw_records, tuple(mine), [tuple(mine.values())])
        stored = conn.exec_driver_sql("SELECT local_id, datestamp, deleted, format, syntax, payload, content_hash, "
                                      "first_seen, seen_at, changed_at, run_id FROM raw_records "
                                      "ORDER BY local_id").fetchall()
    (a, *theirs), (b, *ours) = stored
    assert (a, b) == ("a", "b") and theirs == ours
    assert bytes(ours[4]) == b"\x00\x1dpayload"


def test_a_normalised_record_inserted_and_updated_keeps_one_timestamp_format(db):
    """The normaliser inserts plain tuples (the batch's timestamp bound once) and updates through SQLAlchemy:
    the stored ``updated_at`` reads back the same way from both (on SQLite: the same text shape)."""
    from normaliser.model import Record
    from normaliser.store import RecordStore, records
    records.create(db, checkfirst=True)
    store = RecordStore(db)
    store.put([(Record("s", "a", title="Inserted"), "s", "a", 1), (Record("s", "b", title="Later updated"), "s", "b", 2)])
    store.put([(Record("s", "b", title="Updated"), "s", "b", 3)])
    with db.connect() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT updated_at FROM records ORDER BY local_id")]
    if db.dialect.name == "sqlite":
        shapes = {re.sub(r"\d", "9", text) for text in stored}
        assert shapes == {"9999-99-99 99:99:99.999999"}, stored
    else:
        assert all(stamp.tzinfo is not None for stamp in stored)


def test_a_rerun_touches_unchanged_records_in_the_shape_sqlalchemy_writes(db):
    """Records seen again unchanged get their ``seen_at`` and datestamp in one executemany: the stored
    timestamp reads back as the insert's does, and each record keeps its own datestamp."""
    from harvester.raw import RawRecord
    from harvester.stores.records import RecordStore as RawRecords
    raws = RawRecords(db)
    recs = [RawRecord(source="s", local_id=f"r{i}", payload=f"<r{i}/>".encode(), format="marc21", syntax="marcxml",
                      datestamp=f"2026-01-0{i}") for i in (1, 2)]
    raws.apply(recs)
    raws.apply([dataclasses.replace(r, datestamp=f"2026-02-0{i}") for i, r in enumerate(recs, 1)])
    with db.connect() as conn:
        rows = conn.exec_driver_sql("SELECT local_id, datestamp, first_seen, seen_at FROM raw_records "
                                    "ORDER BY local_id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("r1", "2026-02-01"), ("r2", "2026-02-02")]
    if db.dialect.name == "sqlite":
        assert {re.sub(r"\d", "9", str(v)) for r in rows for v in r[2:]} == {"9999-99-99 99:99:99.999999"}


def test_rows_in_reads_the_rows_of_the_keys_asked_for_across_sources_and_chunks(db):
    """``rows_in`` (the driver's own IN lists, per source and chunk of 400) answers what ``record_in``'s
    queries answered: the rows of the keys asked for, none other; with ``live``, not the deleted ones."""
    from normaliser.model import Record
    from normaliser.store import RecordStore, records
    from storage.db import rows_in
    store = RecordStore(db)
    keys = [("s", f"{i:04d}") for i in range(900)] + [("t", "1"), ("t", "2"), ("o'brien", "a,b")]
    store.put([(Record(s, i, title=f"Book {i}"), s, i, 1) for s, i in keys])
    store.put([(None, "t", "2", 2)])
    asked = keys[::2] + [("t", "2"), ("s", "missing"), ("nowhere", "1"), ("o'brien", "a,b")]
    with db.connect() as conn:
        found = list(rows_in(conn, records, ("source", "local_id", "deleted"), asked))
        live = {(s, i) for s, i in rows_in(conn, records, ("source", "local_id"), asked, live=True)}
    assert sorted((s, i) for s, i, _ in found) == sorted(set(asked) - {("s", "missing"), ("nowhere", "1")})
    assert live == {(s, i) for s, i, _ in found} - {("t", "2")}
    assert {bool(d) for s, i, d in found if (s, i) == ("t", "2")} == {True}


def test_insert_rows_replacing_on_the_key_updates_stored_rows_and_adds_the_rest(db):
    with db.begin() as conn:
        insert_rows(conn, record_links, ("source", "local_id", "control_number"), [("s", "1", "a"), ("s", "2", "b")])
        insert_rows(conn, record_links, ("source", "local_id", "control_number", "holdings_of"),
                    [("s", "2", "", "b"), ("t", "1", "c", "")], replace_on=("source", "local_id"))
        rows = conn.exec_driver_sql("SELECT source, local_id, control_number, holdings_of FROM record_links "
                                    "ORDER BY source, local_id").fetchall()
    assert [tuple(r) for r in rows] == [("s", "1", "a", ""), ("s", "2", "", "b"), ("t", "1", "c", "")]
