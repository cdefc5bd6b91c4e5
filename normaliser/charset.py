"""Deciding and decoding the character set of MARC 21 field bytes.

Leader/09 says ``a`` (UTF-8) or blank (MARC-8), and members get it wrong
both ways: UTF-8 systems that imported MARC-8 records without converting
them, and MARC-8 exports with UTF-8 edits.  So the flag is the default and
the bytes get the final word, field by field:

1. ASCII without escape sequences needs no decision.
2. Bytes that are valid UTF-8 are UTF-8.  A MARC-8 field is practically never
   valid UTF-8 (its combining diacritics, 0xE0–0xFE, come *before* an ASCII
   letter), so this is safe whatever the flag says.
3. Otherwise MARC-8 (pymarc's tables, including EACC for CJK) when every
   character maps ("clean").
4. Otherwise the text is damaged: decoded with U+FFFD (flag ``a``) or with
   pymarc's blank for unmapped MARC-8 (flag blank), and the damage counted so
   the caller can reject a record that is mostly undecodable (see
   ``normaliser.iso2709.GARBAGE_RATIO``).
"""
from __future__ import annotations

import re
import unicodedata

from pymarc import marc8_mapping
from pymarc.marc8 import MARC8ToUnicode

__all__ = ["undo_double_utf8", "decode_field", "marc8_unmapped", "marc8_to_str", "gb_decode", "looks_gb", "cyrillic_decode", "iso5426_to_str"]

_BASIC_LATIN = 0x42
_ANSEL = 0x45
_MULTIBYTE = 0x31  # EACC

_ODD = marc8_mapping.ODD_MAP
_CODESETS = marc8_mapping.CODESETS

#: Bytes that need no further checking in ESC-free MARC-8: ASCII and mapped ANSEL.
_ANSEL_OK = bytes(sorted(set(range(0x80)) | set(_CODESETS[_ANSEL]) | {k for k in _ODD if k < 0x100}))


def marc8_unmapped(data: bytes) -> int:
    """How many characters of ``data`` pymarc's MARC-8 tables cannot map."""
    if b"\x1b" not in data:
        return len(data.translate(None, _ANSEL_OK))
    return _walk(data)[0]


def _walk(data: bytes) -> tuple[int, int | None]:
    """Step through ``data`` as pymarc's converter does: ``(unmapped, start of a cut-off EACC character)``."""
    g0, g1 = _BASIC_LATIN, _ANSEL
    bad = 0
    pos, end = 0, len(data)
    while pos < end:
        byte = data[pos]
        if byte == 0x1B:  # escape sequences, read the way pymarc reads them
            nxt = data[pos + 1:pos + 2]
            if nxt in (b"(", b",", b"$"):
                final_at = pos + 2
                if nxt == b"$" and data[final_at:final_at + 1] == b",":
                    final_at += 1
                if final_at >= end:
                    return bad + 1, None
                g0 = data[final_at]
                bad += g0 not in _CODESETS
                pos = final_at + 1
                continue
            if nxt in (b")", b"-"):
                if pos + 2 >= end:
                    return bad + 1, None
                g1 = data[pos + 2]
                bad += g1 not in _CODESETS
                pos += 3
                continue
            if nxt and nxt[0] in _CODESETS:
                g0 = nxt[0]
                pos += 2
            elif nxt == b"s":
                g0 = _BASIC_LATIN
                pos += 2
            else:
                bad += 1
                pos += 1
            continue
        if g0 == _MULTIBYTE:
            if pos + 3 > end:
                return bad + 1, pos
            code = int.from_bytes(data[pos:pos + 3], "big")
            if code not in _CODESETS[_MULTIBYTE] and code not in _ODD:
                bad += 1
            pos += 3
            continue
        pos += 1
        if byte < 0x20:
            continue
        table = _CODESETS.get(g1 if byte > 0x80 else g0, {})
        if byte not in table and byte not in _ODD and byte != 0x20:
            bad += 1
    return bad, None


def marc8_to_str(data: bytes) -> str:
    """MARC-8 → Unicode (NFC) with pymarc's converter; unmapped characters become blanks."""
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii")
    tail = ""
    if b"\x1b$" in data:
        # pymarc writes to stderr when an EACC character is cut off at the end; cut it first.
        dangling = _walk(data)[1]
        if dangling is not None:
            data, tail = data[:dangling], "\ufffd"
    try:
        return MARC8ToUnicode(quiet=True).translate(data) + tail
    except (IndexError, TypeError, KeyError, ValueError):
        # A malformed escape sequence: keep the ASCII, mark everything else as damaged.
        return data.decode("ascii", "replace")


def decode_field(data: bytes, utf8_flag: bool) -> tuple[str, str, int]:
    """Decode one field's bytes (subfield delimiters included).

    Returns ``(text, how, damaged)`` where ``how`` is ``"ascii"``, ``"utf-8"``,
    ``"marc-8"`` or ``"damaged"``, and ``damaged`` counts characters that
    could not be decoded.  MARC-8 is decoded subfield by subfield because its
    escape sequences do not cross subfield boundaries.
    """
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii"), "ascii", 0
    if b"\x1b" not in data:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if b"\xc3" in data or b"\xc2" in data or b"\xc5" in data:
                fixed = undo_double_utf8(text)
                if fixed != text:
                    return fixed, "double-utf-8", 0
            return text, "utf-8", 0
    bad = marc8_unmapped(data)
    if bad == 0 or not utf8_flag:
        text = "\x1f".join(marc8_to_str(part) for part in data.split(b"\x1f"))
        if text.count("\ufffd") > bad:
            bad = text.count("\ufffd")
        return text, "marc-8" if bad == 0 else "damaged", bad
    text = data.decode("utf-8", "replace")
    return text, "damaged", max(1, text.count("\ufffd"))


# --- legacy character sets of UNIMARC/CNMARC and Chinese ILSs -------------------

def _plausible_cjk(text: str, declared: bool = False) -> bool:
    """Whether decoded text looks like Chinese rather than bytes of another set read as GBK.

    Every non-ASCII character must be a common Han character, CJK punctuation
    or a full-width form — or one of GB2312's other letters beside Han text:
    Greek, Cyrillic, numerals, and the kana and bopomofo of rows 4, 5 and 8 (a
    Chinese library's Japanese books: "東京外国語大学アジアアフリカ言語文化研究所"
    was quarantined for its katakana).  Those letters alone make Chinese only in
    a record that ``declared`` GB (a Russian book's "Распад" in a CNMARC record
    that says GB2312 in 100 $a); elsewhere some Han is wanted too.  The rare
    characters GB18030 reaches through its four-byte sequences (and the
    user-defined area) are not plausible.
    """
    wide = 0
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            continue
        if 0x4E00 <= o <= 0x9FFF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF or o in (0xB7, 0x2014, 0x2026,
                                                                                          0x2018, 0x2019, 0x201C,
                                                                                          0x201D, 0x2103, 0x2116):
            wide += 1
            continue
        if 0x0391 <= o <= 0x03C9 or 0x0410 <= o <= 0x044F or 0x2160 <= o <= 0x216B or 0x2460 <= o <= 0x249B \
                or 0x3041 <= o <= 0x30FE or 0x3105 <= o <= 0x3129:
            continue        # in GB2312 too
        return False
    return wide > 0 or declared


def gb_decode(data: bytes, declared: bool = False) -> str | None:
    """``data`` as GB18030 (a superset of GB2312 and GBK) when it decodes strictly to plausible Chinese
    (``declared``: in a record whose character set says GB)."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    return text if _plausible_cjk(text, declared) else None


def looks_gb(data: bytes) -> bool:
    """A field that is neither UTF-8 nor clean MARC-8 but reads as Chinese in GBK/GB18030."""
    if data.isascii() or b"\x1b" in data:
        return False
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        pass
    return marc8_unmapped(data) > 0 and gb_decode(data) is not None


_CYRILLIC = {"cp866": (0x80, 0xAF, 0xE0, 0xF1), "cp1251": (0xC0, 0xFF, 0xA8, 0xB8), "koi8_r": (0xC0, 0xFF, 0xA3, 0xB3)}
_RUSSIAN_COMMON = frozenset("оеаинтсрвлкмдпуяОЕАИНТСРВЛКМДПУЯ")


def cyrillic_decode(data: bytes) -> tuple[str, str] | None:
    """``(text, codec)`` when the 8-bit bytes read as Russian in exactly one of CP866, CP1251, KOI8-R."""
    best: list[tuple[float, str, str]] = []
    high = sum(1 for b in data if b >= 0x80)
    if not high:
        return None
    for codec in _CYRILLIC:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        letters = [ch for ch in text if ord(ch) >= 0x80]
        if not letters or not all("\u0400" <= ch <= "\u04ff" or ch in "№«»–—" for ch in letters):
            continue
        # Russian text is mostly lower case and its most frequent letters are a small set.
        lower = sum(ch.islower() for ch in letters) / len(letters)
        common = sum(ch in _RUSSIAN_COMMON for ch in letters) / len(letters)
        best.append((lower + common, codec, text))
    if not best:
        return None
    best.sort(reverse=True)
    if best[0][0] < 1.0 or (len(best) > 1 and best[0][0] - best[1][0] < 0.3):
        return None        # not clearly one of them
    return best[0][2], best[0][1]


# ISO 5426 (UNIMARC 100 $a/26-29 "03"): non-spacing diacritics come *before* their base letter.
_ISO5426_MARKS = {
    0xC1: "\u0300", 0xC2: "\u0301", 0xC3: "\u0302", 0xC4: "\u0303", 0xC5: "\u0304", 0xC6: "\u0306",
    0xC7: "\u0307", 0xC8: "\u0308", 0xC9: "\u0308", 0xCA: "\u030A", 0xCB: "\u0315", 0xCC: "\u0312",
    0xCD: "\u030B", 0xCE: "\u031B", 0xCF: "\u030C", 0xD0: "\u0327", 0xD1: "\u031C", 0xD2: "\u0326",
    0xD3: "\u0328", 0xD4: "\u0325", 0xD5: "\u032E", 0xD6: "\u0323", 0xD7: "\u0324", 0xD8: "\u0332",
    0xD9: "\u0333", 0xDA: "\u0329", 0xDB: "\u032D", 0xDD: "\uFE22", 0xDE: "\uFE20", 0xDF: "\uFE23",
}
_ISO5426_SPACING = {
    0xA1: "¡", 0xA2: "„", 0xA3: "£", 0xA4: "$", 0xA5: "¥", 0xA6: "†", 0xA7: "§", 0xA8: "‰", 0xA9: "‘",
    0xAA: "“", 0xAB: "«", 0xAC: "♭", 0xAD: "©", 0xAE: "℗", 0xAF: "®", 0xB0: "ʻ", 0xB1: "ʼ", 0xB2: "‚",
    0xB6: "‡", 0xB7: "·", 0xB8: "’", 0xB9: "”", 0xBA: "»", 0xBB: "♯", 0xBC: "ʹ", 0xBD: "ʺ", 0xBF: "¿",
    0xE1: "Æ", 0xE2: "Đ", 0xE6: "Ĳ", 0xE8: "Ł", 0xE9: "Ø", 0xEA: "Œ", 0xEC: "Þ", 0xF1: "æ", 0xF2: "đ",
    0xF3: "ð", 0xF5: "ı", 0xF6: "ĳ", 0xF8: "ł", 0xF9: "ø", 0xFA: "œ", 0xFB: "ß", 0xFC: "þ",
}


def iso5426_to_str(data: bytes) -> tuple[str, int]:
    """ISO 5426 → Unicode (NFC); ``(text, unmapped characters)``."""
    out: list[str] = []
    marks: list[str] = []
    bad = 0
    for byte in data:
        if byte < 0x80:
            out.append(chr(byte))
            if marks:
                out.extend(marks)
                marks = []
        elif byte in _ISO5426_MARKS:
            marks.append(_ISO5426_MARKS[byte])
        elif byte in _ISO5426_SPACING:
            out.append(_ISO5426_SPACING[byte])
            if marks:
                out.extend(marks)
                marks = []
        else:
            out.append("\ufffd")
            bad += 1
    out.extend(marks)
    return unicodedata.normalize("NFC", "".join(out)), bad


_DOUBLE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]{1,3}")


def undo_double_utf8(text: str) -> str:
    """Repair UTF-8 that was read as Latin-1 and encoded again ("Ã©" → "é", "Å\\x9f" → "ş").

    Only runs that decode as one well-formed UTF-8 character are replaced, so
    a genuine "Ã" followed by an ordinary letter is left alone.
    """
    def fix(match: "re.Match[str]") -> str:
        chunk = match.group(0)
        try:
            out = chunk.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return chunk
        return out if len(out) == 1 else chunk
    return _DOUBLE.sub(fix, text)
