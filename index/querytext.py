"""Reading what a reader typed, the same way for every backend.

Readers type words, sometimes ``"a phrase"``, sometimes ``-notthis``, often an
ISBN copied with hyphens from a book.  Nothing here is engine query syntax, so
a stray quote, colon or bracket is just punctuation and never an error.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from stdnum import ean as _ean
from stdnum import isbn as _isbn
from stdnum import issn as _issn

from normaliser.memo import memoised
from normaliser.text import fold_for_search

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_ISBN_LIKE = re.compile(r"^(?:isbn[\s:：]*)?([0-9][0-9\s-]{8,20}[0-9xX])$", re.IGNORECASE)
_ISSN_LIKE = re.compile(r"^(?:issn[\s:：]*)?(\d{4}-\d{3}[\dxX]|(?<=[\s:：])\d{7}[\dxX])$", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    """One unit of a reader's query: a word or a quoted phrase, maybe negated."""

    text: str
    phrase: bool = False
    negated: bool = False


def parse_text(text: str) -> list[Clause]:
    """Split a query into words and quoted phrases; ``-word`` excludes.

    An unclosed quote runs to the end; empty quotes and a lone ``-`` are dropped.
    """
    clauses = []
    for match in _TOKEN.finditer(text or ""):
        neg, quoted, word = match.groups()
        if word is not None:
            negated = word.startswith("-") and len(word) > 1
            word = word[1:] if negated else word
            if word.strip("-"):
                clauses.append(Clause(word, phrase=False, negated=negated))
        elif quoted and quoted.strip():
            clauses.append(Clause(quoted.strip(), phrase=True, negated=bool(neg)))
    return clauses


def as_isbn13(text: str) -> str | None:
    """The ISBN-13 digits if ``text`` is nothing but a valid ISBN-10 or -13 (hyphens, spaces, "ISBN" ok)."""
    match = _ISBN_LIKE.match((text or "").strip())
    if not match:
        return None
    compact = re.sub(r"[\s-]", "", match.group(1)).upper()
    if len(compact) not in (10, 13) or not _isbn.is_valid(compact):
        return None
    return _isbn.to_isbn13(compact)


def as_issn(text: str) -> str | None:
    """``NNNN-NNNX`` if ``text`` is a valid ISSN written with its hyphen or after "ISSN"."""
    match = _ISSN_LIKE.match((text or "").strip())
    if not match:
        return None
    compact = match.group(1).replace("-", "").upper()
    if not _issn.is_valid(compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"


def isbn_forms(isbn13: str) -> list[str]:
    """An ISBN-13 and, for 978 ISBNs, its ISBN-10: the forms a document is found by."""
    if len(isbn13) == 13 and isbn13.startswith("978") and isbn13.isdigit() and isbn13.isascii() \
            and _ean.calc_check_digit(isbn13[:12]) == isbn13[12]:
        # what stdnum's to_isbn10 returns for a plain valid 978 ISBN-13, without its three validations
        # (compact, validate, isbn_type: ~7% of the profiled document build); anything else still goes through it
        return [isbn13, isbn13[3:12] + _isbn10_check(isbn13[3:12])]
    forms = [isbn13]
    if isbn13.startswith("978"):
        try:
            forms.append(_isbn.to_isbn10(isbn13))
        except Exception:  # stdnum raises its own ValidationError subclasses
            pass
    return forms


def _isbn10_check(digits: str) -> str:
    check = sum((i + 1) * int(n) for i, n in enumerate(digits)) % 11
    return "X" if check == 10 else str(check)


def prefix_key(value: str) -> str:
    """The form call numbers and class numbers are prefix-matched in: case, spaces and full-width ignored.

    ``"TP 311.13"``, ``"tp311.13"`` and ``"ＴＰ３１１"`` all start with ``"TP311"``; both backends index and
    query this form, so the call-number and class-number searches agree.
    """
    return _SPACES.sub("", fold_for_search(value or "")).upper()


_SPACES = re.compile(r"\s+")


_KEY_WORD = re.compile(r"[^\W_]+")


def strip_accents(text: str) -> str:
    """``text`` decomposed (NFKD) without its combining marks: ``Müller`` → ``Muller``.  ASCII text (most of
    a catalogue's) is returned as it is, which NFKD would do too, at a fraction of the cost."""
    if text.isascii():
        return text
    return without_combining(unicodedata.normalize("NFKD", text))


def without_combining(text: str) -> str:
    """``text`` without the characters of a non-zero canonical combining class (``unicodedata.combining``).

    A regex substitution, ~5× cheaper than asking ``unicodedata.combining`` of each character in Python (3.7
    against 18.4 µs a non-ASCII document text at 1M; a Chinese record's whole text is non-ASCII).  Two classes: one of the Basic Multilingual Plane, which the
    regex engine tests as a bitmap, and one of the planes above, tested range by range — mixed into one class
    they made the engine test every character range by range, twice the cost of the Python loop — and only
    for a text with a character in their span (U+101FD–U+1E94A: not the Han of plane 2 a Chinese record has).
    """
    basic, astral_span, astral = _combining()
    text = basic.sub("", text)
    return astral.sub("", text) if astral_span.search(text) else text


@lru_cache(maxsize=1)
def _combining() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The characters ``unicodedata.combining`` calls combining (912 in Unicode 14) as two classes of
    ranges, below and above U+FFFF, and the span of the second; found once a process, when the first text
    that is not ASCII comes (~60 ms)."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])

    def cls(wanted: list[list[int]]) -> re.Pattern[str]:
        return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in wanted) + "]" if wanted else "(?!)")
    astral = [[max(a, 0x10000), b] for a, b in ranges if b > 0xFFFF]
    return (cls([[a, min(b, 0xFFFF)] for a, b in ranges if a <= 0xFFFF]),
            cls([[astral[0][0], astral[-1][1]]] if astral else []), cls(astral))


def folded(text: str) -> str:
    """:func:`fold_for_search` of a short value (a title, name, subject, publisher), kept when it is not ASCII:
    NFKC and OpenCC again for each document that carries it (an author's books, the editions of a work) and
    for each of its fields and keys (its text field, :func:`title_key`).  ASCII is its own folding."""
    return text if text.isascii() else _folded(text)


_folded = memoised(1 << 16)(fold_for_search)


@memoised(1 << 16)
def title_key(text: str) -> str:
    """Case, accents, script (traditional/simplified) and punctuation aside: ``"The history of China:"`` →
    ``"the history of china"``.  Titles are indexed in this form so an exact title typed ranks first.
    Memoised: a document asks for the key of each title two or three times (its exact-title keys, its
    suggestion keys, a title with no subtitle is its own proper title), and titles recur across editions."""
    return " ".join(_KEY_WORD.findall(strip_accents(folded(text or "").casefold())))[:300]


_PROPER_END = re.compile(r"\s[:/=;]\s?|\s?[:/=;]\s")


def title_keys(doc: dict) -> list[str]:
    """The exact-title keys of a search document: each title whole and up to its subtitle or responsibility."""
    keys = []
    for title in [doc.get("title", ""), doc.get("title_original", ""), *doc.get("title_alt", [])]:
        proper = _PROPER_END.split(title or "", 1)[0]
        keys += [title_key(title), title_key(proper)]
    return [k for k in dict.fromkeys(keys) if k]


def regex_literal(text: str) -> str:
    """``text`` as a literal in tantivy's (Rust) regex syntax: every non-alphanumeric as ``\\x{..}``."""
    return "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)
