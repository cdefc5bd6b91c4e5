"""Normalising raw records into the one ``Record`` model.

Readers for MARC 21 (ISO 2709 incl. MARC-8 and GBK, and MARCXML), UNIMARC and
CNMARC (ISO 2709 in any of their character sets, and XML) and simple Dublin
Core turn a ``harvester.raw.RawRecord`` into a
:class:`normaliser.model.Record`; a record that cannot be read raises
:class:`normaliser.errors.RecordError` with a reason so the pipeline can
quarantine it and go on.

``normalise`` only dispatches: on ``raw.syntax`` (how the bytes are
serialised) and ``raw.format`` (which record format the member declared).
A declared format wins; ``auto`` tells MARC 21 from UNIMARC by the tags
(:mod:`normaliser.detect`).  A record that contradicts its declared format is
quarantined with the evidence rather than mis-read.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from pymarc import Record as MarcRecord

from . import iso2709, marcxml, unimarc
from .dc import dc_to_record
from .detect import marc21_evidence, unimarc_evidence
from .errors import RecordError
from .marc21 import group_fields, to_record
from .model import Record
from .quality import texts_xml_safe, xml_unsafe_warning

if TYPE_CHECKING:
    from consortium.presets import HoldingsMapping
    from harvester.raw import RawRecord

__all__ = ["normalise", "RecordError", "Record"]

_MARC_FORMATS = ("marc21", "unimarc", "cnmarc", "auto")
_UNIMARC = ("unimarc", "cnmarc")


def normalise(raw: "RawRecord", holdings: Sequence["HoldingsMapping"] = ()) -> Record:
    """The ``Record`` for one raw (non-deleted) record, or RecordError with the reason."""
    fmt = (raw.format or "auto").lower()
    if raw.syntax == "xml":
        if fmt == "oai_dc" or (fmt == "auto" and _xml_root_name(raw.payload) == "dc"):
            return dc_to_record(raw.payload, raw.source, raw.local_id)
        if fmt not in _MARC_FORMATS:
            raise RecordError(f"record format {raw.format!r} in XML is not supported")
        return _marc(raw, holdings, fmt, xml=True)
    if fmt == "oai_dc":
        raise RecordError(f"oai_dc record arrived with syntax {raw.syntax!r}, expected 'xml'")
    if fmt not in _MARC_FORMATS:
        raise RecordError(f"record format {raw.format!r} is not supported")
    return _marc(raw, holdings, fmt, xml=raw.syntax == "marcxml")


def _xml_root_name(payload: bytes) -> str:
    root = marcxml.parse_xml(payload)
    return root.tag.rpartition("}")[2] if isinstance(root.tag, str) else ""


def _marc(raw: "RawRecord", holdings: Sequence["HoldingsMapping"], fmt: str, xml: bool) -> Record:
    if not raw.payload:
        raise RecordError("empty payload")
    declared = "cnmarc" if fmt == "cnmarc" else None
    if xml:
        marc, warnings = _checked(*marcxml.parse(raw.payload))
        by_tag = group_fields(marc)
        a100 = next((s.value for f in by_tag.get("100", ()) for s in f.subfields if s.code == "a"), None)
        if _family(raw, fmt, by_tag.keys(), a100) == "unimarc":
            return unimarc.to_record(marc, raw.source, raw.local_id, holdings, warnings, by_tag, declared)
    else:
        # Look at the tags before judging the character set: UNIMARC has its own (100 $a/26-29).
        leader, entries, warnings = iso2709.read_directory(raw.payload)
        tags = {tag for tag, _ in entries}
        a100 = iso2709.first_subfield(entries, "100", "a")
        texts: list[str] = []
        if _family(raw, fmt, tags, a100) == "unimarc":
            marc, warnings = unimarc.decode(leader, entries, warnings, a100, texts)
            marc, warnings = _checked(marc, warnings, texts_xml_safe(texts))
            return unimarc.to_record(marc, raw.source, raw.local_id, holdings, warnings, None, declared)
        marc, warnings = iso2709.decode(leader, entries, warnings, texts)
        marc, warnings = _checked(marc, warnings, texts_xml_safe(texts))
        by_tag = group_fields(marc)
    return to_record(marc, raw.source, raw.local_id, holdings, warnings, by_tag)


def _family(raw: "RawRecord", fmt: str, tags: Collection[str], a100: str | None) -> str:
    """``"marc21"`` or ``"unimarc"``: the declared format, or the evidence when it is ``auto``."""
    if fmt in _UNIMARC:
        evidence = marc21_evidence(tags, a100)
        if evidence:
            raise RecordError(f"record declared {fmt.upper()} looks like MARC 21 ({evidence}); "
                              "declare format marc21 or auto for this source")
        return "unimarc"
    evidence = unimarc_evidence(tags, a100)
    if not evidence:
        return "marc21"
    if fmt == "marc21":
        raise RecordError(f"record declared MARC 21 looks like UNIMARC ({evidence}); "
                          "declare format unimarc, cnmarc or auto for this source")
    return "unimarc"


def _checked(marc: MarcRecord, warnings: list[str], safe: bool = False) -> tuple[MarcRecord, list[str]]:
    """``(marc, warnings)`` plus a warning when the record holds characters XML cannot carry, so the
    quality report counts what every MARCXML path out will replace (``publish.writers``); ``safe`` when
    the reader's texts already cleared it (:func:`normaliser.quality.texts_xml_safe`)."""
    if safe:
        return marc, warnings
    unsafe = xml_unsafe_warning(marc)
    # first, so the reader's own last warning stays the hint of a "no title" quarantine reason
    return marc, ([unsafe] + list(warnings)) if unsafe else warnings
