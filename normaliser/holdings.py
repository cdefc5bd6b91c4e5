"""Member holdings embedded in bibliographic records → ``Holding`` rows.

Where a member's ILS puts its copies (952 for Koha and FOLIO, AVA for Alma,
852, 945, 999…) is configuration, not code: a holdings mapping from
``consortium.presets`` names the tag and the subfield codes for each datum.
Mappings are duck-typed (any object with those attributes) so the normaliser
needs nothing from the harvester at run time.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pymarc import Field

from .model import Holding
from .text import normalize_space

if TYPE_CHECKING:
    from consortium.presets import HoldingsMapping

__all__ = ["extract_holdings"]

_DATA = ("library", "location", "call_number", "barcode", "status", "volume", "note")


def _join(values: dict[str, list[str]], codes: Sequence[str]) -> str:
    return normalize_space(" ".join(v for code in codes for v in values.get(code, ())))


def extract_holdings(fields_by_tag: dict[str, list[Field]], mappings: Iterable["HoldingsMapping"],
                     source: str, local_id: str) -> list[Holding]:
    """One ``Holding`` per field carrying a mapping's tag; fields with no datum are skipped.

    Several subfield codes for one datum are joined with a space in the
    order the mapping gives them; a coded status is translated with the
    mapping's ``status_map`` (unknown codes are kept as they are).
    """
    out: list[Holding] = []
    for mapping in mappings:
        status_map = getattr(mapping, "status_map", None) or {}
        for field in fields_by_tag.get(mapping.tag, ()):
            if field.control_field:
                continue
            values: dict[str, list[str]] = {}
            for sub in field.subfields:
                values.setdefault(sub.code, []).append(sub.value)
            data = {name: _join(values, getattr(mapping, name, ()) or ()) for name in _DATA}
            if not data["call_number"]:
                parts = [normalize_space(values[c][0]) for c in getattr(mapping, "call_number_parts", ()) or ()
                         if values.get(c) and values[c][0].strip()]
                data["call_number"] = "/".join(parts)
            if not any(data.values()):
                continue
            if data["status"]:
                data["status"] = status_map.get(data["status"], data["status"])
            out.append(Holding(source=source, local_id=local_id, **data))
    return out
