"""Accents off for search: one regex over the combining characters, the same text as asking each character."""
from __future__ import annotations

import random
import sys
import unicodedata

from index.pinyin_input import typed_form
from index.querytext import strip_accents, title_key, without_combining


def _asking_each(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def test_every_code_point_is_dropped_exactly_when_unicodedata_calls_it_combining():
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert without_combining(every) == _asking_each(every)
    assert len(every) - len(without_combining(every)) == sum(1 for ch in every if unicodedata.combining(ch)) > 900


def test_mixed_scripts_fold_as_before():
    rng = random.Random(14)
    spans = [(0x20, 0x250), (0x300, 0x370), (0x1E00, 0x1F00), (0x4E00, 0x4F00), (0x0900, 0x0980), (0x10000, 0x1F000)]
    for _ in range(5000):
        text = "".join(chr(rng.randrange(*rng.choice(spans))) for _ in range(rng.randrange(1, 16)))
        decomposed = unicodedata.normalize("NFKD", text)
        assert strip_accents(text) == _asking_each(decomposed)


def test_what_readers_and_records_see():
    assert strip_accents("Müller, Łódź, Ærø, Dvořák") == "Muller, Łodz, Ærø, Dvorak"
    assert title_key("Hóng Lóu Mèng 紅樓夢") == "hong lou meng 红楼梦"
    assert typed_form("HóngLóuMèng") == "hongloumeng"
    assert typed_form("nǚ lǜ") == "nv lv"
