"""MARC writers: ISO 2709, MARCXML and MARC-in-JSON, the same bytes for every path out.

Every outward interface serialises through these, so a record downloaded,
harvested over OAI-PMH, exported or indexed by Zebra is written the same
way.  MARCXML is written record by record (:func:`marcxml_bytes`) between
:data:`COLLECTION_HEAD` and :data:`COLLECTION_TAIL`, so a streamed export and
a one-record download agree byte for byte.
"""
from __future__ import annotations

from collections.abc import Iterable

from lxml import etree
from pymarc import Field, Indicators, Subfield
from pymarc import Record as MarcRecord

from normaliser.marcxml import MARC_NS
from normaliser.quality import XML_FORBIDDEN, exchange_tag, structural_ok

__all__ = ["MARC_NS", "COLLECTION_HEAD", "COLLECTION_TAIL", "to_iso2709", "marcxml_record", "marcxml_bytes",
           "to_marcxml", "to_marc_json", "xml_text"]

COLLECTION_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="{MARC_NS}">\n'.encode()
COLLECTION_TAIL = b"</collection>\n"

#: What a character XML cannot carry becomes in a value (the Unicode replacement character) …
REPLACEMENT = "\ufffd"
#: … in a tag or subfield code, which MARCXML's schema restricts to ASCII graphics …
CODE_REPLACEMENT = "?"
#: … and in an indicator: blank, MARC's "undefined".
INDICATOR_REPLACEMENT = " "


#: ISO 2709's largest field (4 digits of length in the directory), less room for indicators and codes.
MAX_FIELD_BYTES = 9999
_CHUNK_BYTES = 9000


def to_iso2709(record: MarcRecord) -> bytes:
    """ISO 2709 bytes in UTF-8 (MARC 21 leader/09 ``a``; UNIMARC declares it in 100 $a).

    A damaged record still makes a readable record: tags, indicators and codes are replaced as in
    MARCXML (:func:`marcxml_record`), values lose the delimiters ISO 2709 reserves (to U+FFFD), and
    a field longer than a directory entry can say (9,999 bytes) is split into fields of the same
    tag and indicators rather than written with a length that breaks every reader.
    """
    out = MarcRecord(leader=str(record.leader), force_utf8=True)
    for f in record.fields:
        if f.control_field:
            out.add_field(Field(exchange_tag(f.tag, True), data=xml_text(f.data or "")))
            continue
        subfields = [Subfield(_code(s.code, CODE_REPLACEMENT), xml_text(s.value or "")) for s in f.subfields]
        indicators = Indicators(_code(f.indicator1, INDICATOR_REPLACEMENT, "indicator"),
                                _code(f.indicator2, INDICATOR_REPLACEMENT, "indicator"))
        for part in _fitting(subfields):
            out.add_field(Field(exchange_tag(f.tag, False), indicators, part))
    return out.as_marc()


def _fitting(subfields: list[Subfield]) -> list[list[Subfield]]:
    """``subfields`` in groups that each fit one ISO 2709 field; an over-long value is cut in pieces."""
    groups: list[list[Subfield]] = [[]]
    size = 3  # indicators and the field terminator
    for sub in subfields:
        for piece in _pieces(sub.value):
            need = 2 + len(piece.encode("utf-8"))
            if groups[-1] and size + need > MAX_FIELD_BYTES:
                groups.append([])
                size = 3
            groups[-1].append(Subfield(sub.code, piece))
            size += need
    return groups


def _pieces(value: str) -> list[str]:
    if len(value.encode("utf-8")) <= _CHUNK_BYTES:
        return [value]
    pieces, current, size = [], [], 0
    for ch in value:
        width = len(ch.encode("utf-8"))
        if size + width > _CHUNK_BYTES:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    return pieces + ["".join(current)]


def marcxml_record(record: MarcRecord) -> etree._Element:
    """One ``<record>`` element in the MARC 21 slim namespace (used for UNIMARC too).

    A damaged record (a control character as an indicator, a subfield code or
    inside a value) loses no field and fails no OAI-PMH page, export or Zebra
    batch: each character XML cannot carry is replaced (:data:`REPLACEMENT`
    in values, :data:`CODE_REPLACEMENT` in tags and codes,
    :data:`INDICATOR_REPLACEMENT` in indicators).  The normaliser counts
    such records in the quality report (``normaliser.quality.xml_unsafe_warning``).
    """
    el = etree.Element(f"{{{MARC_NS}}}record", nsmap={None: MARC_NS})
    etree.SubElement(el, f"{{{MARC_NS}}}leader").text = xml_text(str(record.leader))
    for f in record.fields:
        tag = exchange_tag(f.tag, f.control_field)
        if f.control_field:
            etree.SubElement(el, f"{{{MARC_NS}}}controlfield", tag=tag).text = xml_text(f.data or "")
            continue
        df = etree.SubElement(el, f"{{{MARC_NS}}}datafield", tag=tag,
                              ind1=_code(f.indicator1, INDICATOR_REPLACEMENT, "indicator"),
                              ind2=_code(f.indicator2, INDICATOR_REPLACEMENT, "indicator"))
        for s in f.subfields:
            etree.SubElement(df, f"{{{MARC_NS}}}subfield", code=_code(s.code, CODE_REPLACEMENT)).text = \
                xml_text(s.value or "")
    return el


def _code(value: str | None, replacement: str, kind: str = "code") -> str:
    """An indicator or subfield code both MARCXML and ISO 2709 can carry: one ASCII character."""
    return value if structural_ok(value, kind) else replacement  # type: ignore[return-value]


def marcxml_bytes(record: MarcRecord) -> bytes:
    """One record's MARCXML, a line of a :data:`COLLECTION_HEAD` … :data:`COLLECTION_TAIL` document."""
    return etree.tostring(marcxml_record(record), encoding="UTF-8") + b"\n"


def to_marcxml(records: Iterable[MarcRecord]) -> bytes:
    """A MARCXML ``<collection>`` document (UTF-8, with declaration)."""
    return COLLECTION_HEAD + b"".join(marcxml_bytes(r) for r in records) + COLLECTION_TAIL


def to_marc_json(record: MarcRecord) -> dict:
    """MARC-in-JSON (the Code4Lib / pymarc ``as_dict`` shape)."""
    return record.as_dict()


def xml_text(value: str) -> str:
    """``value`` with each character XML 1.0 forbids (which members' records sometimes carry) replaced
    by U+FFFD, so the reader sees that something was there.

    One regex, no per-character work: this is the OAI-PMH hot path.
    """
    return XML_FORBIDDEN.sub(REPLACEMENT, value) if value else value
