"""What tells one manifestation from another beyond the description (MARC 21): dates, printings, set ISBNs, carrier.

Member catalogues describe one printing of a book in different ways: one
gives the publication year, another the printing year with the copyright
year beside it ("[2001], c2000"), a third adds "Reprinted 2014".  Dedupe
needs every year a record gives and whether it says it is a printing, not
only the first year.  It also needs what the description hides: an ISBN
qualified "(set)" or "(v. 2)" says which part of a multipart set the record
is, and an audiobook, a microform or a large-print edition catalogued on the
book template shows itself only in 007, 008/23, 336-338, 300, 250 or 245 $h.
"""
from __future__ import annotations

import re

from pymarc import Field

from . import identifiers
from .memo import memoised

__all__ = ["imprint_years", "printing_statement", "isbn_parts", "carrier", "carrier_in_text", "gmd", "PRINTING"]

_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
#: Printing and reprint statements (not editions): "Reprinted 2014", "3rd printing", "2. Nachdruck", "第3次印刷".
PRINTING = re.compile(r"\b(?:reprint(?:ed)?|repr\.|printing|impression|nachdr(?:uck)?|réimpr\w*|tirage)\b"
                      r"|印刷|印次|重印", re.I)
_SET = re.compile(r"\b(?:set|complete|v(?:ols?)?\.?\s*\d+\s*-\s*\d+)\b|全套", re.I)
_PART = re.compile(r"\b(?:v|vol|volume|pt|part|bd|t|book|no)\.?\s*(\d+)\b|第\s*(\d+)\s*[卷册]", re.I)
_AUDIO_WORDS = re.compile(r"\b(?:audio ?discs?|sound ?discs?|sound ?cassettes?|audio ?cassettes?|audiocassettes?"
                          r"|compact discs?|audio files?|mp3)\b", re.I)
_MICRO_WORDS = re.compile(r"\bmicro(?:fiches?|films?|opaques?|cards?|form)\b", re.I)
_LARGE_PRINT = re.compile(r"\blarge[- ](?:print|type)\b|大字", re.I)
_BRAILLE = re.compile(r"\bbraille\b|盲文", re.I)
#: RDA codes of audio content (336 spw), media (337 s) and carriers (338 sd, ss…); microforms are 337 h / 338 h*.
_AUDIO_CODES = frozenset({"spw", "s", "sd", "ss", "sg", "se", "st", "sz"})
_GMD = {"electronic": "electronic", "sound recording": "audio", "microform": "microform", "braille": "braille"}


def _subfields(fields, codes: str) -> list[str]:
    return [s.value for f in fields for s in f.subfields if s.code in codes]


def imprint_years(by_tag: dict[str, list[Field]], f008: str) -> list[int]:
    """Every year of 008 (date 1; date 2 when it is a copyright, original or production date) and 260/264 $c."""
    found = []
    dates = [f008[7:11]] + ([f008[11:15]] if f008[6:7] in ("t", "r", "p") else [])
    found += [int(d) for d in dates if d.isdigit()]
    for value in _subfields([*by_tag.get("260", ()), *by_tag.get("264", ())], "c"):
        found += [int(y) for y in _YEAR.findall(value)]
    return sorted(set(found))


def printing_statement(by_tag: dict[str, list[Field]]) -> str:
    """The first statement saying the record is a printing or reprint (250, 500, 260/264 $c), '' when none."""
    candidates = (_subfields(by_tag.get("250", ()), "ab") + _subfields(by_tag.get("500", ()), "a")
                  + _subfields([*by_tag.get("260", ()), *by_tag.get("264", ())], "c"))
    return next((v.strip() for v in candidates if _says_printing(v)), "")


@memoised(1 << 16)
def _says_printing(text: str) -> bool:
    """``PRINTING.search(text)``, remembered: ~0.4–1.7 µs a search (case-blind alternatives at every
    position), and the same notes and dates come back with every copy of a manifestation."""
    return PRINTING.search(text) is not None


def part_of_qualifier(qualifier: str) -> str:
    """'set' for a set ISBN's qualifier, the volume number for '(v. 2)', '' otherwise ('pbk.')."""
    if _SET.search(qualifier):
        return "set"
    m = _PART.search(qualifier)
    return str(int(m.group(1) or m.group(2))) if m else ""


def isbn_parts(by_tag: dict[str, list[Field]]) -> list[str]:
    """``"<ISBN-13> set"`` / ``"<ISBN-13> 2"`` for each 020 $a whose qualifier names the set or a volume."""
    out = []
    for field in by_tag.get("020", ()):
        number, qualifiers = "", []
        for sub in field.subfields:
            if sub.code == "a":
                number = identifiers.split_isbn(sub.value)[0] or ""
                qualifiers.append(sub.value)
            elif sub.code == "q":
                qualifiers.append(sub.value)
        part = next((p for p in map(part_of_qualifier, (re.sub(r"^[\d\s-]+[xX]?", "", q) for q in qualifiers)) if p), "")
        if number and part:
            out.append(f"{number} {part}")
    return out


def gmd(by_tag: dict[str, list[Field]]) -> str:
    """The 245 $h general material designation, as 'electronic', 'audio', 'microform' or 'braille'."""
    text = " ".join(_subfields(by_tag.get("245", ()), "h")).lower()
    return next((kind for words, kind in _GMD.items() if words in text), "")


def carrier(by_tag: dict[str, list[Field]], f008: str) -> str:
    """What a text record is carried on when it is not ordinary print: audio, microform, large-print, braille."""
    f007 = [(f.data or "")[:2].lower() for f in by_tag.get("007", ())]
    rdacodes = [v.strip().lower() for v in _subfields([*by_tag.get("336", ()), *by_tag.get("337", ()),
                                                       *by_tag.get("338", ())], "b")]
    extent = " ".join(_subfields(by_tag.get("300", ()), "a"))
    edition = " ".join(_subfields(by_tag.get("250", ()), "ab"))
    form = f008[23:24]
    said = gmd(by_tag)
    if said in ("audio", "microform", "braille"):
        return said
    if any(c.startswith("s") for c in f007) or set(rdacodes) & _AUDIO_CODES:
        return "audio"
    if any(c.startswith("h") for c in f007 + rdacodes):
        return "microform"
    if form == "f" or "tc" in f007 or any(c.startswith("f") for c in f007):
        return "braille"
    if form == "d" or "tb" in f007:
        return "large-print"
    return _carrier_words((extent, edition))


@memoised(1 << 16)
def _carrier_words(extent_and_edition: tuple[str, str]) -> str:
    """:func:`carrier_in_text`, remembered: four case-blind searches, ~2.5 µs for a common extent, and the
    extents and editions repeat with every copy of a manifestation."""
    return carrier_in_text(*extent_and_edition)


def carrier_in_text(extent: str, edition: str) -> str:
    """The carrier a 300 extent or a 250 edition statement names ("2 audio discs", "Large print ed.")."""
    if _AUDIO_WORDS.search(extent):
        return "audio"
    if _MICRO_WORDS.search(extent):
        return "microform"
    if _BRAILLE.search(edition + " " + extent):
        return "braille"
    if _LARGE_PRINT.search(edition + " " + extent):
        return "large-print"
    return ""
