"""Text clean-up for display (``clean``) and for exact matching (``match_key``).

``clean`` makes catalogue text presentable: MARC subfields carry ISBD
punctuation that belongs *between* elements (``"Title /"``, ``"London :"``),
and once the elements are split into separate fields that punctuation is
noise.  ``match_key`` is much harsher and only for comparing: two catalogues
that wrote the same title with different case, diacritics, punctuation or a
leading English article should give the same key.  Han characters are folded
to simplified (OpenCC ``t2s``) and full-width forms to half-width (NFKC), but
never romanised — pinyin would make homophones collide.  ``fold_for_search``
and ``pinyin`` serve the search index (folding at index and query time, and a
pinyin field for readers who type ``hong lou meng``).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .memo import memoised

__all__ = ["normalize_space", "clean", "match_key", "strip_isbd", "to_simplified", "fold_for_search",
           "pinyin", "pinyin_sort_text", "has_han", "lazy_pinyin"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Abbreviations whose final full stop is part of the word, not ISBD punctuation.
_ABBREVIATIONS = frozenset("""
    dr mr mrs ms mme mlle st ste jr sr bros co corp inc ltd plc dept univ assn
    etc al ed eds rev enl repr col ser pt pts fig figs vol vols no nos pp ca cm mm
    ill illus facsim facsims geneal ports port diagrs diagr tab tabs approx
    hrsg aufl bd jahrg verb erw neubearb übers éd réimpr trad coll
    jan feb mar apr jun jul aug sep sept oct nov dec
    b d fl cent
    ala ariz ark calif colo conn fla ga ill ind kan kans ky md mass mich minn mont neb nebr nev
    okla ore pa tenn tex va vt wash wis wyo ont que alta sask
""".split())

_END_MARKS = frozenset("/:;=,+.]")
_START_MARKS = frozenset("/:;=,[")
_SEPARATORS = frozenset("/:;=,")


def normalize_space(text: str | None) -> str:
    """NFC, control characters removed, runs of whitespace as one space, trimmed."""
    if not text:
        return ""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    text = " ".join(text.split())
    if not text.isprintable():
        text = " ".join(_CONTROL.sub(" ", text).split())
    return text


def _keeps_full_stop(text: str) -> bool:
    """Whether a final ``.`` belongs to the last word (initial, abbreviation, ellipsis)."""
    if text.endswith(".."):
        return True
    word = text[:-1].rsplit(" ", 1)[-1].lstrip("([\"'")
    if not word:
        return False
    if "." in word and not word.replace(".", "").isdigit():   # U.S.  Ph.D.  S.l.  J.R.R.  (not "3.3.")
        return True
    if len(word) == 1 and word.isalpha():  # an initial: "Smith, J."  "300 p."
        return True
    return word.casefold() in _ABBREVIATIONS


def strip_isbd(text: str) -> str:
    """Remove ISBD punctuation left at either end of an already space-normalised string.

    Repeats until nothing changes, so the result is a fixed point
    (``strip_isbd(strip_isbd(x)) == strip_isbd(x)``).
    """
    if not text or (text[-1] not in _END_MARKS and text[0] not in _START_MARKS):
        return text
    while text:
        before = text
        last = text[-1]
        if last in _SEPARATORS or (last == "+" and text[-2:-1] == " "):
            text = text[:-1].rstrip()
        elif last == "." and not _keeps_full_stop(text):
            text = text[:-1].rstrip()
        if text[:1] in _SEPARATORS and text[1:2] == " ":
            text = text[2:].lstrip()
        # An unbalanced bracket left by ISBD splitting: "[London :" + "Smith]".
        if text.startswith("[") and "]" not in text:
            text = text[1:].lstrip()
        if text.endswith("]") and "[" not in text:
            text = text[:-1].rstrip()
        if text == before:
            break
    return text


def clean(text: str | None) -> str:
    """Display form: NFC, whitespace collapsed, ISBD punctuation stripped at the ends (memoised)."""
    return _clean(text) if text else ""


@memoised(1 << 17)
def _clean(text: str) -> str:
    return strip_isbd(normalize_space(text))


# --- match keys -------------------------------------------------------------

# Letters without a canonical decomposition that readers still see as a base letter plus mark.
_LATIN_FOLD = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "æ": "ae", "œ": "oe",
                             "ı": "i", "ŧ": "t", "ð": "d", "þ": "th"})
# Romanisation apostrophes (soft/hard sign, ayn, alif) are dropped rather than spaced.
_DROP = dict.fromkeys(map(ord, "ʹʺʻʼʽʾʿ'’`´"), None)
_KEEP_SYMBOLS = frozenset("+#")
_ENGLISH = (None, "", "eng", "en", "und")
_ARTICLES = ("the ", "a ", "an ")


def _is_mark(ch: str) -> bool:
    """Combining marks, including Indic vowel signs (category Mc, combining class 0)."""
    return unicodedata.category(ch)[0] == "M"


def _is_latin(ch: str) -> bool:
    return ch.isalpha() and (ch < "\u0250" or "\u1e00" <= ch <= "\u1eff")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3FFFF or 0xFF66 <= o <= 0xFF9F)


def _strip_latin_marks(text: str) -> str:
    """Drop combining marks that sit on a Latin letter; marks on other scripts stay."""
    out: list[str] = []
    base_latin = False
    for ch in unicodedata.normalize("NFD", text):
        if _is_mark(ch):
            if not base_latin:
                out.append(ch)
            continue
        base_latin = _is_latin(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


#: A word of ASCII text as :func:`_words` reads it: letters, digits, ``+`` and ``#`` (no ASCII character is a
#: mark).  One regex instead of a Python step per character: most titles are ASCII, and the dedupe's staging
#: keys every title and name (BENCHMARKS.md).
_ASCII_WORD = re.compile(r"[A-Za-z0-9+#]+")


def _words(text: str) -> list[str]:
    """The words of ``text``: letters, digits, ``+`` and ``#``, and the marks that follow them; anything else
    breaks words."""
    chars: list[str] = []
    for ch in text:
        if ch.isalnum() or ch in _KEEP_SYMBOLS or (chars and chars[-1] != " " and _is_mark(ch)):
            chars.append(ch)
        elif chars and chars[-1] != " ":
            chars.append(" ")
    return "".join(chars).split()


def match_key(text: str | None, language: str | None = None) -> str:
    """A key for exact matching: same work title written differently → same key.

    NFKC (full-width → half-width), traditional → simplified Han, casefold,
    diacritics off Latin letters, punctuation and symbols (CJK ones included)
    as word breaks, single spaces between words and none between CJK characters;
    a leading "the"/"a"/"an" dropped when ``language`` is English or unknown.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DROP)
    if not text.isascii():
        text = _strip_latin_marks(text).translate(_LATIN_FOLD)
        if _HAN.search(text) is not None:
            text = _converter().convert(text)
    plain = text.isascii()
    words = _ASCII_WORD.findall(text) if plain else _words(text)
    if not words:
        return ""
    if (language or "").lower() in _ENGLISH and len(words) > 1 and words[0] + " " in _ARTICLES:
        words = words[1:]
    if plain:                   # no CJK word to join without a space
        return " ".join(words)
    out = [words[0]]
    for word in words[1:]:
        if not (_is_cjk(out[-1][-1]) and _is_cjk(word[0])):
            out.append(" ")
        out.append(word)
    return "".join(out)


# --- Chinese folding and pinyin -----------------------------------------------

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
_t2s = None


def _converter():
    global _t2s
    if _t2s is None:
        import opencc  # a C extension; loading its dictionaries takes a few ms, so only when needed
        _t2s = opencc.OpenCC("t2s")
    return _t2s


def has_han(text: str | None) -> bool:
    """Whether ``text`` contains a Han character."""
    return bool(text) and not text.isascii() and _HAN.search(text) is not None


def to_simplified(text: str | None) -> str:
    """Traditional Han characters → simplified (OpenCC ``t2s``); everything else unchanged."""
    if not text or text.isascii() or _HAN.search(text) is None:
        return text or ""
    return _converter().convert(text)


def fold_for_search(text: str | None) -> str:
    """What the search index sees, at index and at query time alike.

    NFKC (full-width Latin, digits and CJK punctuation → their ordinary
    forms) and traditional → simplified Han, so a reader typing in either
    script, or with a full-width keyboard, finds the same records.
    """
    if not text:
        return ""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    return to_simplified(text)


#: Strings kept by the memoised helpers below.  The index stage asks for the pinyin of the same titles and
#: names again and again (editions of one work, a prolific author): pypinyin cost ~12% of it, uncached.
MEMO_SIZE = 1 << 16


@lru_cache(maxsize=MEMO_SIZE)
def pinyin(text: str | None) -> str:
    """Toneless pinyin syllables of the Han characters in ``text``, space-separated ("" if none).

    For sorting and pinyin search only — never for match keys: homophones
    (刘/柳/留 → "liu") would make different works collide.  Memoised (:data:`MEMO_SIZE`).
    """
    if not has_han(text):
        return ""
    return " ".join(lazy_pinyin(to_simplified(text), errors="ignore"))


@lru_cache(maxsize=MEMO_SIZE)
def pinyin_sort_text(text: str | None) -> str:
    """``text`` with every Han character replaced by its toneless pinyin, for alphabetical sorting (memoised)."""
    if not has_han(text):
        return text or ""
    return " ".join(part.strip() for part in lazy_pinyin(to_simplified(text)) if part.strip())


def lazy_pinyin(text: str, errors: str = "default", wade_giles: bool = False) -> list[str]:
    """``pypinyin.lazy_pinyin(text, errors=errors)`` (style NORMAL, or WADEGILES), the same list, each
    syllable's style conversion memoised.

    pypinyin converts every character's toned reading to the style again (``zhōng`` → ``zhong`` through
    three regex passes), ~60% of its time; a catalogue has ~1,500 distinct readings.  The conversion of the
    styles used here (NORMAL, WADEGILES) reads only the reading, never the character, and lazy_pinyin's
    converter adds nothing with its default options, so a memo keyed by reading, style and strictness gives
    the same syllables.
    """
    from pypinyin import Style
    style = Style.WADEGILES if wade_giles else Style.NORMAL
    return _pinyin_engine().lazy_pinyin(text, style=style, errors=errors, strict=True)


@lru_cache(maxsize=1)
def _pinyin_engine():
    from pypinyin.converter import UltimateConverter
    from pypinyin.core import Pinyin

    class MemoConverter(UltimateConverter):
        def __init__(self) -> None:
            super().__init__()
            self.memo: dict[tuple, str] = {}

        def convert_style(self, han, orig_pinyin, style, strict, **kwargs):
            key = (orig_pinyin, style, strict)
            found = self.memo.get(key)
            if found is None:
                found = self.memo[key] = super().convert_style(han, orig_pinyin, style, strict, **kwargs)
            return found

    return Pinyin(MemoConverter())
