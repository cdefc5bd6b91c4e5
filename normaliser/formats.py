"""What kind of thing a MARC 21 record describes, as one of ``model.FORMATS``.

Dedupe never merges across formats, so this errs on the side of the coded
data: leader/06 (type of record) and /07 (bibliographic level) decide the
family; 008 "form of item" (position 23, or 29 for maps and visual
materials) splits print from electronic and microform; the RDA media and carrier types
(337/338 $b), or 007/00 and 245 $h together, when 008 says nothing (one of
those alone is as often a print record's link to a scan).
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["marc_format"]

_FORM_AT_29 = frozenset("efgkor")
_ELECTRONIC_FORMS = frozenset("oqs")
_MICRO_FORMS = frozenset("abc")
_BLANK = frozenset(" |#")  # "#" is how some exports (lobid) write blanks
_BY_TYPE = {
    "c": "score", "d": "score", "e": "map", "f": "map", "g": "video", "i": "recording",
    "j": "music-recording", "k": "image", "m": "software", "o": "kit", "p": "mixed", "r": "other",
}


def marc_format(leader: str, f008: str, f007: Sequence[str], media: Sequence[str], carriers: Sequence[str],
                accompanying: bool = False, gmd: str = "") -> str:
    """The format for a record.

    ``f007`` are the 007 strings; ``media``/``carriers`` the 337/338 $b codes
    (lower case); ``accompanying`` whether 300 $e names accompanying material
    (a print book "with CD-ROM" has 007 ``co`` but is still a book); ``gmd``
    the 245 $h designation ("electronic", "microform", …).
    """
    rtype = leader[6:7]
    level = leader[7:8]
    form = f008[29 if rtype in _FORM_AT_29 else 23:][:1] or " "
    categories = {s[:1].lower() for s in f007 if s}
    print_carrier = any(c.startswith("n") for c in carriers) or "n" in media

    if form in _MICRO_FORMS:
        micro = True
    elif form in _BLANK:
        micro = not print_carrier and ("h" in categories or "h" in media
                                       or any(c.startswith("h") for c in carriers))
    else:
        micro = False

    if rtype in ("a", "t"):
        if micro:
            return "microform"
        if level in ("a", "b"):
            return "article"
        electronic = _electronic(form, categories, media, carriers, print_carrier, accompanying, gmd)
        if level in ("s", "i"):
            return "eserial" if electronic else "serial"
        if rtype == "t":
            return "manuscript"
        return "ebook" if electronic else "book"
    kind = _BY_TYPE.get(rtype, "other")
    if micro and kind in ("score", "map"):
        return "microform"
    return kind


def _electronic(form: str, categories: set[str], media: Sequence[str], carriers: Sequence[str],
                print_carrier: bool, accompanying: bool, gmd: str) -> bool:
    """Electronic when 008 says so, or the RDA media/carrier (337/338) do, or 007 and 245 $h both do.

    One pre-RDA field alone is not enough: a print record often carries ``007 cr``, or a
    "[electronic resource]" designation, beside an 856 link to a scan; typed from that one field it
    became an e-book and never met its print twins in other catalogues.
    """
    if form in _ELECTRONIC_FORMS:
        return True
    if form not in _BLANK:
        return False            # coded as print (large print, braille, reproduction…)
    if print_carrier or accompanying:
        return False
    if "c" in media or any(c.startswith("c") for c in carriers):
        return True
    return gmd == "electronic" and "c" in categories
