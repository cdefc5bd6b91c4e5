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

from pymarc import marc8_mapping
from pymarc.marc8 import MARC8ToUnicode

__all__ = ["decode_field", "marc8_unmapped", "marc8_to_str"]

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
            return data.decode("utf-8"), "utf-8", 0
        except UnicodeDecodeError:
            pass
    bad = marc8_unmapped(data)
    if bad == 0 or not utf8_flag:
        text = "\x1f".join(marc8_to_str(part) for part in data.split(b"\x1f"))
        if text.count("\ufffd") > bad:
            bad = text.count("\ufffd")
        return text, "marc-8" if bad == 0 else "damaged", bad
    text = data.decode("utf-8", "replace")
    return text, "damaged", max(1, text.count("\ufffd"))
