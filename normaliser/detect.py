"""Telling a UNIMARC (or CNMARC) record from a MARC 21 one.

Both are ISO 2709 with the same leader layout, so a member that declares
``marc21`` (or ``auto``) may well send UNIMARC.  The tags give it away:
UNIMARC has its title in 200 and *general processing data* in 100 $a
(``YYYYMMDD`` + type of date + dates…), where MARC 21 has 245 and a personal
name.  A record with a 245 is taken as MARC 21 whatever else it has.
"""
from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["unimarc_evidence", "marc21_evidence"]

# 100 $a: date entered on file (8 digits), type of publication date (one letter), date 1.
_GENERAL_PROCESSING = re.compile(r"^\d{8}[a-kux][\du ]{4}")


def unimarc_evidence(tags: Collection[str], field100_a: str | None) -> str | None:
    """A human-readable reason when the record looks like UNIMARC, else None."""
    if "245" in tags:
        return None
    reasons = []
    if "200" in tags:
        reasons.append("title in 200 and no 245")
    if field100_a and _GENERAL_PROCESSING.match(field100_a):
        reasons.append(f"100 $a is UNIMARC general processing data ({field100_a[:17]!r}…)")
    if not reasons:
        return None
    return "; ".join(reasons)


def marc21_evidence(tags: Collection[str], field100_a: str | None) -> str | None:
    """A reason when a record declared UNIMARC is plainly MARC 21: a 245 title and no 200."""
    if "245" in tags and "200" not in tags:
        return "title in 245 and no 200"
    return None
