"""One MARCXML ``<record>`` (bytes) → a ``pymarc.Record`` plus the repairs made.

Member XML is untrusted input, so it is parsed with a hardened lxml parser:
no entity expansion, no DTD loading, no network.  The MARC namespace is
optional — Alma publishes ``<record>`` without it — so elements are matched
by local name.  MARCXML is Unicode by definition; leader/09 is ignored.
"""
from __future__ import annotations

import threading

from lxml import etree
from pymarc import Field, Indicators, Record, Subfield
from pymarc.leader import Leader

from .errors import RecordError
from .iso2709 import CONTROL_TAGS, control_field, data_field

__all__ = ["parse", "parse_xml", "MARC_NS"]

#: The MARCXML namespace: reading matches local names, but everything downstream that *writes*
#: MARCXML (publish, web, demo) takes it from here — one definition above the harvester's floor.
MARC_NS = "http://www.loc.gov/MARC21/slim"

_local = threading.local()
_tuple_new = tuple.__new__      # a Subfield without namedtuple's Python-level __new__ (as iso2709 builds them)


def _parser() -> etree.XMLParser:
    """A hardened parser per thread (lxml parsers must not be shared across threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 dtd_validation=False, huge_tree=False, remove_comments=True,
                                 remove_pis=True)
        _local.parser = parser
    return parser


def parse_xml(payload: bytes) -> etree._Element:
    """The root element of an XML payload, or RecordError when it is not well-formed."""
    try:
        root = etree.fromstring(payload, _parser())
    except etree.XMLSyntaxError as exc:
        raise RecordError(f"XML is not well-formed: {exc}") from None
    if root is None:
        raise RecordError("XML payload is empty")
    return root


def _local_name(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _is_marc_record(element: etree._Element) -> bool:
    return _local_name(element) == "record" and any(
        _local_name(c) in ("leader", "datafield", "controlfield") for c in element)


def _find_record(root: etree._Element) -> etree._Element:
    """The MARC ``<record>``: the root itself, or inside a ``<collection>`` or an OAI envelope."""
    if _is_marc_record(root):
        return root
    for element in root.iter():
        if _is_marc_record(element):
            return element
    raise RecordError(f"MARCXML payload has no <record> element (root is <{_local_name(root)}>)")


def _plain_data_tag(tag: str) -> bool:
    """Whether ``Field(tag, indicators, subfields)`` keeps ``tag`` as it is and makes a data field of it —
    three ASCII characters, not a control field's 00X (pymarc pads a shorter number, reads other digits) —
    so :func:`normaliser.iso2709.data_field` can build it without ``Field.__init__``'s checks: 277 → 257 µs
    a MARCXML record, normalised whole in one process."""
    return len(tag) == 3 and tag.isascii() and (tag >= "010" or not tag.isdigit())


def parse(payload: bytes) -> tuple[Record, list[str]]:
    """Parse one MARCXML record; raise RecordError when it cannot be read."""
    element = _find_record(parse_xml(payload))
    warnings: list[str] = []
    leader = None
    fields: list[Field] = []
    for child in element:
        name = _local_name(child)
        if name == "datafield":
            tag = (child.get("tag") or "").strip()
            ind1 = (child.get("ind1") or " ")[:1]
            ind2 = (child.get("ind2") or " ")[:1]
            subfields = [_tuple_new(Subfield, ((sf.get("code") or " ")[:1], sf.text or ""))
                         for sf in child if _local_name(sf) == "subfield"]
            fields.append(data_field(tag, Indicators(ind1, ind2), subfields) if _plain_data_tag(tag)
                          else Field(tag, Indicators(ind1, ind2), subfields))
        elif name == "controlfield":
            tag = (child.get("tag") or "").strip()
            fields.append(control_field(tag, child.text or "") if tag in CONTROL_TAGS
                          else Field(tag, data=child.text or ""))
        elif name == "leader":
            leader = child.text or ""
    if leader is None:
        warnings.append("MARCXML record has no leader; a blank one was assumed")
        leader = " " * 24
    elif len(leader) != 24:
        warnings.append(f"MARCXML leader is {len(leader)} characters, not 24; padded or cut")
        leader = (leader + " " * 24)[:24]
    if not fields:
        raise RecordError("MARCXML record has no fields")
    record = Record(leader=leader)
    record.leader = Leader(leader)
    record.fields = fields
    return record, warnings
