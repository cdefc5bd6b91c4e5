"""Small MARC records built in code, for harvester (and other) tests.

Building records with pymarc keeps fixtures readable and lets a test say
exactly what it varies (an id, a title) instead of editing binary files.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pymarc import Field, Indicators, Record, Subfield, record_to_xml

MARC_NS = "http://www.loc.gov/MARC21/slim"


def make_record(control: str | None, title: str = "A book", author: str | None = "Author, Ann",
                isbn: str | None = None, year: str = "2020", leader_9: str = "a",
                extra: list[Field] | None = None) -> Record:
    """A minimal bibliographic record: 001, 008, 020, 100, 245, 260."""
    rec = Record(force_utf8=leader_9 == "a")
    rec.leader = rec.leader[:9] + leader_9 + rec.leader[10:]
    if control is not None:
        rec.add_field(Field(tag="001", data=control))
    rec.add_field(Field(tag="008", data=f"200101s{year}    xxu           000 0 eng d"))
    if isbn:
        rec.add_field(Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", isbn)]))
    if author:
        rec.add_field(Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", author)]))
    rec.add_field(Field(tag="245", indicators=Indicators("1", "0"), subfields=[Subfield("a", title)]))
    rec.add_field(Field(tag="260", indicators=Indicators(" ", " "),
                        subfields=[Subfield("a", "Beijing :"), Subfield("b", "Press,"), Subfield("c", year)]))
    for field in extra or []:
        rec.add_field(field)
    return rec


def marcxml(rec: Record) -> bytes:
    """One namespaced MARCXML ``<record>`` element as UTF-8 bytes."""
    return record_to_xml(rec, namespace=True)


def iso2709(rec: Record) -> bytes:
    return rec.as_marc()


def collection(records: list[Record], namespace: bool = True) -> bytes:
    """A MARCXML ``<collection>`` document."""
    body = b"".join(record_to_xml(r, namespace=False) for r in records)
    xmlns = f' xmlns="{MARC_NS}"'.encode() if namespace else b""
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<collection' + xmlns + b">" + body + b"</collection>\n"


def oai_records(n: int, start: datetime = datetime(2024, 1, 1), prefix: str = "oai:test:",
                sets: list[str] | None = None, step: timedelta = timedelta(minutes=1)):
    """``n`` demo-provider records with ids ``{prefix}1..n`` and increasing datestamps."""
    from demo.oai_member import OaiRecord

    return [OaiRecord(identifier=f"{prefix}{i}", datestamp=start + step * i, sets=list(sets or []),
                      marcxml=marcxml(make_record(str(i), title=f"Title {i}")))
            for i in range(1, n + 1)]
