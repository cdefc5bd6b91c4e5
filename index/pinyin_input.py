"""Pinyin as Chinese readers type it: ``hongloumeng``, ``HongLouMeng``, ``hóng lóu mèng``, ``hong2lou2meng4``.

Documents carry toneless, space-separated syllables (``hong lou meng``, see
:mod:`index.documents`).  A typed word that is nothing but pinyin syllables run
together is split back into syllables here and looked up as a phrase in that
field.  Search only: never a dedupe key, where homophones (刘/柳 → ``liu``) would
merge different works.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from normaliser.text import has_han

from .querytext import without_combining

#: The most segmentations of one word that are looked up (``xian`` is 西安 or 先).
MAX_SEGMENTATIONS = 4
_TONE_DIGITS = re.compile(r"(?<=[a-z])[1-5]")
_U_AFTER = re.compile(r"(?<=[jqxyJQXY])v")


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every toneless pinyin syllable, read from pypinyin's own dictionary (``ü`` written ``v``, as it indexes)."""
    from pypinyin.pinyin_dict import pinyin_dict
    found = set()
    for reading in {r for readings in pinyin_dict.values() for r in readings.split(",")}:   # ~1,500 distinct
        plain = _strip_marks(reading)
        if plain.isascii() and plain.isalpha():
            found.add(plain.lower())
    found -= {"m", "n", "ng", "hm", "hng", "r"}   # interjections: would split ordinary words everywhere
    found |= {"lue", "nue"}                        # 略, 虐 as most romanisations write them (pypinyin: lve)
    return frozenset(found)


def typed_form(word: str) -> str:
    """``HóngLóuMèng`` / ``hong2lou2meng4`` → ``hongloumeng``: lowercase, tone marks and tone digits dropped."""
    return _TONE_DIGITS.sub("", _strip_marks(word.casefold()))


def _strip_marks(text: str) -> str:
    """Tone marks off; ``ü`` (with or without a tone) as ``v``, ``ê`` as ``e``."""
    decomposed = unicodedata.normalize("NFKD", text).replace("u\u0308", "v")
    # after j, q, x and y the ü is written u (ju, qu, xu, yu); older romanisations write yü
    decomposed = _U_AFTER.sub("u", decomposed)
    return without_combining(decomposed)


def segmentations(word: str, limit: int = MAX_SEGMENTATIONS) -> list[list[str]]:
    """Ways to read ``word`` as two or more pinyin syllables, fewest syllables first; [] if it is not pinyin."""
    text = typed_form(word)
    if len(text) < 4 or not text.isascii() or not text.isalpha():
        return []
    table = syllables()
    longest = 6   # zhuang, shuang: the longest syllables
    # ways[i]: segmentations of text[i:], fewest syllables first, at most `limit` kept
    ways: list[list[list[str]]] = [[] for _ in range(len(text))] + [[[]]]
    for start in range(len(text) - 1, -1, -1):
        found = []
        for end in range(min(len(text), start + longest), start, -1):
            piece = text[start:end]
            if piece in table:
                found.extend([piece, *rest] for rest in ways[end])
        ways[start] = sorted(found, key=len)[:limit]
    return [seg for seg in ways[0] if len(seg) >= 2]


def index_text(doc: dict) -> str:
    """The ``pinyin`` text a backend indexes: the document's pinyin and, for a romanised record (a Han
    ``title_original`` beside a Latin ``title``), the cataloguer's romanised title too (LoC writes 的 ``di``
    where pypinyin says ``de``); every word split into syllables (``Zhongguo`` → ``zhong guo``) so it meets
    a typed run of syllables."""
    text = doc.get("pinyin", "") or ""
    title = doc.get("title", "") or ""
    if has_han(doc.get("title_original")) and title and (title.isascii() or _is_pinyin(title)):
        text += "\n" + title
    return " ".join(_syllabify(word) for word in re.findall(r"[^\W\d_]+", text))


def _is_pinyin(text: str) -> bool:
    """Latin letters with pinyin tone marks or ü only (``Fa zhe xue yü``)."""
    return all(ch.isascii() or typed_form(ch).isascii() for ch in text)


@lru_cache(maxsize=1 << 16)  # every word of every document's pinyin text; the syllables recur (~5% of the stage)
def _syllabify(word: str) -> str:
    plain = typed_form(word)
    if plain in syllables() or not plain.isascii():
        return plain
    found = segmentations(plain, limit=1)
    return " ".join(found[0]) if found else plain
