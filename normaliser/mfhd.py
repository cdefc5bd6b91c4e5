"""MARC 21 holdings records (MFHD, leader/06 u/v/x/y) → a holdings ``Record``.

Alma, Aleph, Voyager, Evergreen, Sierra and FOLIO send a library's holdings
as records of their own, linked to the bibliographic record by 004 (its
001).  Each becomes a ``Record`` of kind ``holdings`` whose ``holdings``
list has one ``Holding`` per 852 (location and call number), all sharing the
record's serial summary (:mod:`normaliser.serials`) and its 856 links, which
are that library's own (a proxied URL only its readers can use).  Dedupe
never matches these records; the merge attaches them to the entry holding
their bibliographic record (:mod:`normaliser.links` finds it).

A holdings record without 004 cannot be attached to anything and is
quarantined with that reason; one without 852 is kept (its summary is still
worth showing) and counted by ``unioncat quality``.
"""
from __future__ import annotations

from pymarc import Field
from pymarc import Record as MarcRecord

from .errors import RecordError
from .fields import unique
from .model import Holding, Record
from .serials import summary_and_coverage
from .text import normalize_space

__all__ = ["to_holdings_record", "HOLDINGS_TYPES"]

#: leader/06 of a MARC 21 holdings record: unknown, multipart item, single-part item, serial item.
HOLDINGS_TYPES = frozenset("uvxy")


def _joined(field: Field, codes: str) -> str:
    return normalize_space(" ".join(s.value for s in field.subfields if s.code in codes))


def _holding(field: Field | None, source: str, bib: str, local_id: str, summary: str, coverage: list[list[int]],
             urls: list[str]) -> Holding:
    """``local_id`` is the bibliographic record's (004) until the merge knows its local id.

    852 $a institution, $b sublocation, $c shelving location; $k $h $i $m call number; $z note."""
    if field is None:
        return Holding(source=source, local_id=bib, holdings_id=local_id, summary=summary,
                       coverage=coverage, urls=urls)
    return Holding(source=source, local_id=bib, holdings_id=local_id,
                   library=_joined(field, "b") or _joined(field, "a"),
                   location=_joined(field, "c"),
                   call_number=_joined(field, "khim"),
                   note=_joined(field, "z"),
                   summary=summary, coverage=coverage, urls=urls)


def to_holdings_record(marc: MarcRecord, by_tag: dict[str, list[Field]], source: str, local_id: str,
                       warnings: list[str]) -> Record:
    """The holdings ``Record`` of one MFHD; RecordError when it names no bibliographic record."""
    def control(tag: str) -> str:
        fields = by_tag.get(tag)
        return normalize_space(fields[0].data or "") if fields else ""

    bib = control("004")
    if not bib:
        raise RecordError(f"MARC 21 holdings record (leader/06 {str(marc.leader)[6]!r}) without 004: "
                          "it names no bibliographic record to attach to")
    summary, coverage = summary_and_coverage(by_tag)
    urls = unique(normalize_space(s.value) for f in by_tag.get("856", ()) for s in f.subfields if s.code == "u")
    rec = Record(source=source, local_id=local_id, kind="holdings", holdings_of=bib, record_format="marc21",
                 control_number=control("001"), warnings=list(warnings))
    rec.holdings = [_holding(f, source, bib, local_id, summary, coverage, urls) for f in by_tag.get("852", ())
                    if not f.control_field] or [_holding(None, source, bib, local_id, summary, coverage, urls)]
    if "852" not in by_tag:
        rec.warnings.append("holdings record without 852: no location or call number")
    return rec
