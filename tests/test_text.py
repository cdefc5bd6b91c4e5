"""normaliser.text: display clean-up and match keys."""
from __future__ import annotations

import random
import string
import unicodedata

import pytest

from normaliser import text as text_module
from normaliser.text import clean, match_key, normalize_space, strip_isbd


@pytest.mark.parametrize("given, expected", [
    ("Title /", "Title"),
    ("Subtitle :", "Subtitle"),
    ("London ;", "London"),
    ("Parallel title =", "Parallel title"),
    ("Smith, John,", "Smith, John"),
    ("by John Smith.", "by John Smith"),
    ("1999.", "1999"),
    ("abc :.", "abc"),
    ("x, 300 p. +", "x, 300 p."),
    (": a leading separator", "a leading separator"),
    ("Das Buch ; ", "Das Buch"),
    ("  many   spaces\tand\nlines ", "many spaces and lines"),
    ("[New York :", "New York"),          # unbalanced bracket left by ISBD splitting
    ("Publisher],", "Publisher"),
    ("", ""),
])
def test_clean_strips_isbd_punctuation(given, expected):
    assert clean(given) == expected


@pytest.mark.parametrize("kept", [
    "Smith, J.", "300 p.", "24 cm.", "2nd ed.", "Dr.", "U.S.", "[S.l.]", "Ph.D.", "etc.",
    "And then...", "Chanhassen, Minn.", "Kogan, Ėmilʹ, 1941-", "What?",
])
def test_clean_keeps_full_stops_of_abbreviations_and_initials(kept):
    assert clean(kept) == kept


def test_clean_is_nfc_and_drops_control_characters():
    decomposed = "Cafe\u0301\u0088 soci\u00e9te\u0301\x00"
    assert clean(decomposed) == "Café société"
    assert unicodedata.is_normalized("NFC", clean(decomposed))
    assert normalize_space("a\u00a0b\u3000c") == "a b c"       # NBSP and ideographic space
    assert normalize_space(None) == ""


SAMPLES = [
    "Title /", "abc :.", "[New York :", "[[x] :", "Smith, J. ;", "a. b. c. .", " : ; = /", "...", ".", "[",
    "]", "=]", "x +", "+", "A /  : ; .", "Dr. :", "中国历史 /", "Straße.", "[S.l. :", "p. ]", ", ,", "—",
    "e\u0301.", "\u0300", "a\u0088b", "x ]. :", "[a] [b",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_clean_is_idempotent(text):
    once = clean(text)
    assert clean(once) == once
    assert strip_isbd(once) == once


def test_clean_idempotent_on_generated_strings():
    alphabet = ["a", "B", " ", ".", ":", ";", "/", "=", ",", "+", "[", "]", "é", "e\u0301", "中", "\t", "J."]
    # every string of up to 4 pieces: a brute-force property check without Hypothesis
    strings = [""]
    for _ in range(4):
        strings = [s + piece for s in strings for piece in alphabet] if len(strings) < 5000 else strings
        for text in strings:
            once = clean(text)
            assert clean(once) == once, repr(text)


@pytest.mark.parametrize("a, b", [
    ("The Lord of the Rings", "lord of the rings"),
    ("Café Société!", "cafe societe"),
    ("Le Café", "le cafe"),
    ("Ｆｕｌｌ　ｗｉｄｔｈ", "full width"),
    ("Straße", "STRASSE"),
    ("Łódź", "Lodz"),
    ("Soli\ufe20a\ufe21noĭ stolp", "Solianoi stolp"),
    ("ʻOhana", "Ohana"),
    ("Hello -- world", "hello world"),
    ("中国 历史", "中国历史"),
    ("ﾃｽﾄ", "テスト"),
])
def test_match_key_equal(a, b):
    assert match_key(a) == match_key(b)


def test_match_key_keeps_han_and_never_romanises():
    assert match_key("中国历史") == "中国历史"
    assert match_key("明代政治制度") != match_key("Ming dai zheng zhi zhi du")
    # homophones stay apart
    assert match_key("公式") != match_key("攻勢")


def test_match_key_keeps_marks_on_non_latin_scripts():
    assert match_key("देवनागरी पाठ") == "देवनागरी पाठ"
    assert match_key("שָׁלוֹם") == "שָׁלוֹם"
    assert match_key("Привет, мир!") == "привет мир"


def test_match_key_articles_only_for_english_or_unknown():
    assert match_key("The Hobbit") == "hobbit"
    assert match_key("The Hobbit", "eng") == "hobbit"
    assert match_key("A history", None) == "history"
    assert match_key("An essay", "und") == "essay"
    assert match_key("Die Welt", "ger") == "die welt"
    assert match_key("A", "eng") == "a"                 # a title that is only an article stays
    assert match_key("The", None) == "the"
    assert match_key("Theory of everything") == "theory of everything"


def test_match_key_empty_and_punctuation_only():
    assert match_key("") == ""
    assert match_key(None) == ""
    assert match_key(" -- ; ") == ""


def test_match_key_is_idempotent():
    for text in SAMPLES + ["The Lord of the Rings", "Café", "中国 历史", "देवनागरी पाठ"]:
        key = match_key(text, "ger")
        assert match_key(key, "ger") == key


def test_ascii_titles_take_a_regex_that_reads_the_words_the_character_walk_reads():
    """ASCII text is split by one regex (``_ASCII_WORD``), the rest walked a character at a time (``_words``):
    on ASCII both must find the same words, punctuation, ``+``, ``#`` and underscores included."""
    rng = random.Random(21)
    samples = ["C++ programming", "C# in depth", "The_underscored__title", "  --  ", "", "A", "a-b/c:d;e.f",
               "Don't stop: the 2nd ed. (rev.)", "#1 + #2 = 3", "x\ty\nz\x00w"]
    samples += ["".join(rng.choice(string.printable) for _ in range(rng.randrange(0, 40))) for _ in range(3000)]
    for sample in samples:
        assert text_module._ASCII_WORD.findall(sample) == text_module._words(sample), sample
