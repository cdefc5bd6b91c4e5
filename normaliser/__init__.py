"""Normalising raw records into the one ``Record`` model.

Readers for MARC21 (ISO 2709 incl. MARC-8, and MARCXML) and simple Dublin
Core turn a ``harvester.raw.RawRecord`` into a
:class:`normaliser.model.Record`; a record that cannot be read raises
:class:`normaliser.errors.RecordError` with a reason so the pipeline can
quarantine it and go on.

``normalise`` only dispatches: on ``raw.syntax`` (how the bytes are
serialised) and ``raw.format`` (which record format the member declared).
UNIMARC and CNMARC are recognised but not mapped yet.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from . import iso2709, marcxml
from .dc import dc_to_record
from .detect import unimarc_evidence
from .errors import RecordError
from .marc21 import group_fields, to_record
from .model import Record

if TYPE_CHECKING:
    from harvester.presets import HoldingsMapping
    from harvester.raw import RawRecord

__all__ = ["normalise", "RecordError", "Record"]

_NOT_YET = "UNIMARC/CNMARC records are not normalised yet"
_MARC_FORMATS = ("marc21", "auto")


def normalise(raw: "RawRecord", holdings: Sequence["HoldingsMapping"] = ()) -> Record:
    """The ``Record`` for one raw (non-deleted) record, or RecordError with the reason."""
    fmt = (raw.format or "auto").lower()
    if fmt in ("unimarc", "cnmarc"):
        raise RecordError(f"{_NOT_YET} (source declares {fmt})")
    if raw.syntax == "xml":
        if fmt == "oai_dc" or (fmt == "auto" and _xml_root_name(raw.payload) == "dc"):
            return dc_to_record(raw.payload, raw.source, raw.local_id)
        if fmt not in _MARC_FORMATS:
            raise RecordError(f"record format {raw.format!r} in XML is not supported")
        return _marc(raw, holdings, xml=True)
    if fmt == "oai_dc":
        raise RecordError(f"oai_dc record arrived with syntax {raw.syntax!r}, expected 'xml'")
    if fmt not in _MARC_FORMATS:
        raise RecordError(f"record format {raw.format!r} is not supported")
    return _marc(raw, holdings, xml=raw.syntax == "marcxml")


def _xml_root_name(payload: bytes) -> str:
    root = marcxml.parse_xml(payload)
    return root.tag.rpartition("}")[2] if isinstance(root.tag, str) else ""


def _marc(raw: "RawRecord", holdings: Sequence["HoldingsMapping"], xml: bool) -> Record:
    if not raw.payload:
        raise RecordError("empty payload")
    if xml:
        marc, warnings = marcxml.parse(raw.payload)
        by_tag = group_fields(marc)
        if "245" not in by_tag:
            a100 = next((s.value for f in by_tag.get("100", ()) for s in f.subfields if s.code == "a"), None)
            _reject_unimarc(raw, by_tag.keys(), a100)
    else:
        # Look at the tags before judging the character set: UNIMARC from a
        # Chinese ILS is GB2312 and would otherwise be rejected as undecodable.
        leader, entries, warnings = iso2709.read_directory(raw.payload)
        tags = {tag for tag, _ in entries}
        if "245" not in tags:
            _reject_unimarc(raw, tags, iso2709.first_subfield(entries, "100", "a"))
        marc, warnings = iso2709.decode(leader, entries, warnings)
        by_tag = group_fields(marc)
    return to_record(marc, raw.source, raw.local_id, holdings, warnings, by_tag)


def _reject_unimarc(raw: "RawRecord", tags: Collection[str], a100: str | None) -> None:
    evidence = unimarc_evidence(tags, a100)
    if evidence:
        declared = "declared MARC 21" if raw.format == "marc21" else f"declared {raw.format!r}"
        raise RecordError(f"{_NOT_YET}: record {declared} looks like UNIMARC ({evidence})")
