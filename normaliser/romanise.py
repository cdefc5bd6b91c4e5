"""Chinese personal names across romanisations: pinyin ↔ Wade-Giles, and Han → both.

Most members have no authority records, yet their catalogues hold "Zhao,
Liewen" (pinyin, since 2000), "Chao, Lieh-wen" (Wade-Giles, older records)
and 趙烈文 / 赵烈文 (880 or CNMARC 200).  A reader types any of them.  These
functions give the other forms of one name, syllable by syllable, for the
search index only: they are never a match key (homophones: one romanisation
stands for many names).  A name is converted only when every word of it
splits into syllables of the source system, so "Chadman, Charles" stays
as it is.  The syllable inventory and the Wade-Giles spellings come from
pypinyin (its dictionary and its Wade-Giles style), read once.
"""
from __future__ import annotations

import functools
import itertools
import re

from .text import has_han, lazy_pinyin

__all__ = ["pinyin_to_wade_giles", "wade_giles_to_pinyin", "han_romanisations", "name_forms"]

_WORD = re.compile(r"[A-Za-zÀ-ÿü'’]+(?:-[A-Za-zÀ-ÿü'’]+)*|[^A-Za-zÀ-ÿü'’]+")
_MAX_FORMS = 4


@functools.cache
def _tables() -> tuple[frozenset[str], dict[str, str], dict[str, list[str]]]:
    """Pinyin syllables (toneless, ü as v), pinyin → Wade-Giles, Wade-Giles (apostrophes off) → pinyin."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style.wadegiles import to_wade_glides

    # ~1,500 distinct readings among the dictionary's ~40,000: each converted once (1.2 CPU-s → 0.1 a process)
    readings = {r for v in pinyin_dict.values() for r in v.split(",")}
    syllables = {to_normal(r).replace("ü", "v") for r in readings}
    syllables = {s for s in syllables if s.isalpha() and s.isascii() and re.search("[aeiouv]", s)}
    to_wg = {s: to_wade_glides(s).replace("v", "ü") for s in syllables}
    from_wg: dict[str, list[str]] = {}
    for s, wg in sorted(to_wg.items()):
        from_wg.setdefault(_plain(wg), []).append(s)
    return frozenset(syllables), to_wg, from_wg


def _plain(wg: str) -> str:
    """A Wade-Giles syllable as typed without diacritics and apostrophes (ch'ao → chao, hsüeh → hsueh)."""
    return wg.replace("'", "").replace("’", "").replace("ü", "u").replace("ŭ", "u")


def _segment(word: str, syllables: frozenset[str]) -> list[str] | None:
    """``word`` as pinyin syllables (longest first, backtracking), or None."""
    word = word.lower().replace("ü", "v")
    if not word:
        return []
    for size in range(min(6, len(word)), 0, -1):
        head = word[:size]
        if head in syllables:
            rest = _segment(word[size:], syllables)
            if rest is not None:
                return [head, *rest]
    return None


def _cap(text: str, like: str) -> str:
    return text[:1].upper() + text[1:] if like[:1].isupper() else text


def pinyin_to_wade_giles(name: str) -> str:
    """"Zhao, Liewen" → "Chao, Lieh-wen"; "" when a word is not pinyin or nothing changes."""
    syllables, to_wg, _ = _tables()
    out = []
    for token in _WORD.findall(name):
        if not token[0].isalpha():
            out.append(token)
            continue
        if "-" in token:
            return ""           # hyphenated syllables are Wade-Giles already
        parts = [p for p in re.split("['’]", token) if p]
        segs = [_segment(p, syllables) for p in parts]
        if any(s is None for s in segs):
            return ""
        out.append(_cap("-".join(to_wg[s] for seg in segs for s in seg), token))
    converted = "".join(out)
    return converted if converted.lower() != name.lower() else ""


def wade_giles_to_pinyin(name: str) -> list[str]:
    """"Chao, Lieh-wen" → ["Zhao, Liewen", "Chao, Liewen"…] (aspiration marks are often lost, so a syllable may
    stand for several); [] when a word is not Wade-Giles."""
    _, _, from_wg = _tables()
    choices: list[list[str]] = []
    for token in _WORD.findall(name):
        if not token[0].isalpha():
            choices.append([token])
            continue
        options = [from_wg.get(_plain(part.lower())) for part in token.split("-")]
        if any(o is None for o in options):
            return []
        words = ["".join(combo).replace("v", "ü") for combo in itertools.islice(itertools.product(*options), 8)]
        choices.append([_cap(w, token) for w in words])
    forms = ["".join(combo) for combo in itertools.islice(itertools.product(*choices), _MAX_FORMS)]
    return [f for f in forms if f.lower() != name.lower()]


def han_romanisations(name: str) -> list[str]:
    """A Han name's pinyin and Wade-Giles readings, syllables spaced: 歐陽輝 → ["ou yang hui", "ou yang hui"]."""
    if not has_han(name):
        return []
    han = "".join(ch for ch in name if has_han(ch))
    pinyin = " ".join(lazy_pinyin(han, errors="ignore"))
    wade = " ".join(s.replace("v", "ü") for s in lazy_pinyin(han, errors="ignore", wade_giles=True))
    return list(dict.fromkeys(f for f in (pinyin, wade) if f))


def name_forms(name: str) -> list[str]:
    """Every other form of one personal name this module can derive (search only)."""
    return list(_name_forms(name))


@functools.lru_cache(maxsize=1 << 16)
def _name_forms(name: str) -> tuple[str, ...]:
    """:func:`name_forms`, memoised (a fresh list for each caller): the index stage derives the forms of
    every contributor of every document, and one author's name comes back with each of their books."""
    if has_han(name):
        return tuple(han_romanisations(name))
    forms = [pinyin_to_wade_giles(name), *wade_giles_to_pinyin(name)]
    return tuple(dict.fromkeys(f for f in forms if f))
