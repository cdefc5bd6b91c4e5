"""MARC writers: ISO 2709, MARCXML and MARC-in-JSON, the same bytes for every path out.

Every outward interface serialises through these, so a record downloaded,
harvested over OAI-PMH, exported or indexed by Zebra is written the same
way.  MARCXML is written record by record (:func:`marcxml_bytes`) between
:data:`COLLECTION_HEAD` and :data:`COLLECTION_TAIL`, so a streamed export and
a one-record download agree byte for byte.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable

from lxml import etree
from pymarc import Record as MarcRecord

from normaliser.marcxml import MARC_NS

__all__ = ["MARC_NS", "COLLECTION_HEAD", "COLLECTION_TAIL", "to_iso2709", "marcxml_record", "marcxml_bytes",
           "to_marcxml", "to_marc_json", "xml_text"]

COLLECTION_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="{MARC_NS}">\n'.encode()
COLLECTION_TAIL = b"</collection>\n"

#: What XML 1.0 cannot carry: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def to_iso2709(record: MarcRecord) -> bytes:
    """ISO 2709 bytes in UTF-8 (MARC 21 leader/09 ``a``; UNIMARC declares it in 100 $a)."""
    record = copy.copy(record)
    record.force_utf8 = True
    return record.as_marc()


def marcxml_record(record: MarcRecord) -> etree._Element:
    """One ``<record>`` element in the MARC 21 slim namespace (used for UNIMARC too).

    Values lose the characters XML cannot carry; a field whose tag or
    indicator, or a subfield whose code, is itself such a character (a
    damaged ISO 2709 record) is left out rather than failing a whole OAI-PMH
    page, export or Zebra batch.
    """
    el = etree.Element(f"{{{MARC_NS}}}record", nsmap={None: MARC_NS})
    etree.SubElement(el, f"{{{MARC_NS}}}leader").text = xml_text(str(record.leader))
    for f in record.fields:
        if _XML_FORBIDDEN.search(f.tag):
            continue
        if f.control_field:
            etree.SubElement(el, f"{{{MARC_NS}}}controlfield", tag=f.tag).text = xml_text(f.data or "")
            continue
        ind1, ind2 = f.indicator1 or " ", f.indicator2 or " "
        if _XML_FORBIDDEN.search(ind1 + ind2):
            continue
        df = etree.SubElement(el, f"{{{MARC_NS}}}datafield", tag=f.tag, ind1=ind1, ind2=ind2)
        for s in f.subfields:
            if not _XML_FORBIDDEN.search(s.code or " "):
                etree.SubElement(df, f"{{{MARC_NS}}}subfield", code=s.code).text = xml_text(s.value)
    return el


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
    """``value`` without the characters XML 1.0 forbids, which members' records sometimes carry.

    One regex, no per-character work: this is the OAI-PMH hot path.
    """
    return _XML_FORBIDDEN.sub("", value) if value else value
