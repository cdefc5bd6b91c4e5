"""MARC writers: ISO 2709, MARCXML and MARC-in-JSON, the same bytes for every path out.

Every outward interface serialises through these, so a record downloaded,
harvested over OAI-PMH, exported or indexed by Zebra is written the same
way.  MARCXML is written record by record (:func:`marcxml_bytes`) between
:data:`COLLECTION_HEAD` and :data:`COLLECTION_TAIL`, so a streamed export and
a one-record download agree byte for byte.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

from lxml import etree
from pymarc import Record as MarcRecord

from normaliser.marcxml import MARC_NS
from normaliser.quality import XML_FORBIDDEN

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


def to_iso2709(record: MarcRecord) -> bytes:
    """ISO 2709 bytes in UTF-8 (MARC 21 leader/09 ``a``; UNIMARC declares it in 100 $a)."""
    record = copy.copy(record)
    record.force_utf8 = True
    return record.as_marc()


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
        tag = _code(f.tag, CODE_REPLACEMENT)
        if f.control_field:
            etree.SubElement(el, f"{{{MARC_NS}}}controlfield", tag=tag).text = xml_text(f.data or "")
            continue
        df = etree.SubElement(el, f"{{{MARC_NS}}}datafield", tag=tag,
                              ind1=_code(f.indicator1, INDICATOR_REPLACEMENT),
                              ind2=_code(f.indicator2, INDICATOR_REPLACEMENT))
        for s in f.subfields:
            etree.SubElement(df, f"{{{MARC_NS}}}subfield", code=_code(s.code, CODE_REPLACEMENT)).text = \
                xml_text(s.value or "")
    return el


def _code(value: str | None, replacement: str) -> str:
    """A tag, indicator or subfield code XML can carry: forbidden characters replaced, never empty."""
    return XML_FORBIDDEN.sub(replacement, value) if value else replacement


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
