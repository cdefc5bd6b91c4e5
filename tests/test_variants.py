"""The search documents' stems: remembered per word, the same text as stemming every word afresh, split at
spaces into the tokens the text fields' regex gives."""
from __future__ import annotations

import pytest
from tantivy import Tokenizer

from index import variants
from index.embedded_doc import analyzer
from index.variants import american, document_stems, words


def _afresh(text: str, algorithm: str) -> str:
    stemmer = variants._stemmer(algorithm)
    return " ".join(stemmer.stemWord(american(w)) for w in words(text))


@pytest.fixture
def forgetful(monkeypatch):
    monkeypatch.setattr(variants, "_STEMMED", {})
    return variants


TEXTS = [("The colours of organisation: travelled poems, running water", ["eng"]),
         ("Chansons et poèmes d'amour", ["fre"]),
         ("Lieder und Gedichte für Kinder", ["ger"]),
         ("Poems — poems, POEMS; Poèmes", []),
         ("中国历史 history of China 1949–2009", ["chi"])]


@pytest.mark.parametrize("text, languages", TEXTS)
def test_remembered_stems_give_the_text_stemming_each_word_gives(forgetful, text, languages):
    algorithm = next((variants.MARC_STEMMERS[c] for c in languages if c in variants.MARC_STEMMERS), "english")
    first = document_stems(text, languages)             # every word stemmed and remembered
    assert first == _afresh(text, algorithm)
    assert document_stems(text, languages) == first     # every word remembered
    assert set(forgetful._STEMMED[algorithm]) == set(words(text))


def test_a_word_is_remembered_per_language(forgetful):
    """``lieder`` is ``lied`` in German, ``lieder`` in English: one language's stem never answers for another's."""
    assert document_stems("Lieder", ["ger"]) == "lied"
    assert document_stems("Lieder", ["eng"]) == "lieder"
    assert document_stems("Lieder", ["ger"]) == "lied"
    assert forgetful._STEMMED == {"german": {"lieder": "lied"}, "english": {"lieder": "lieder"}}


def test_past_the_cap_words_are_stemmed_not_kept(forgetful, monkeypatch):
    monkeypatch.setattr(variants, "STEMMED_CAP", 2)
    assert document_stems("colours travelled organisations poems") == "color travel organiz poem"
    assert len(forgetful._STEMMED["english"]) == 2
    assert document_stems("colours travelled organisations poems") == "color travel organiz poem"


#: Word beginnings and endings of the stemmed languages (inflections, derivations, British spellings, accents).
_ROOTS = ("organ", "nation", "colour", "travel", "kind", "liber", "histor", "poem", "lied", "gedicht", "chanson",
          "canci", "storia", "livr", "bok", "kirja", "könyv", "kitap", "carte", "llibr", "kniha", "ksiazk", "knyg",
          "raamat", "leabhar", "liburu", "libr", "theatr", "analys", "catalogu", "defenc", "programm", "ageing")
_ENDINGS = ("", "s", "es", "ed", "ing", "ation", "ations", "isation", "ised", "ly", "ness", "ment", "er", "ers",
            "ern", "en", "ung", "ungen", "lich", "keit", "ität", "ité", "ités", "eux", "euse", "ando", "iendo",
            "ción", "ciones", "mente", "zione", "zioni", "ção", "ções", "heid", "heden", "lar", "ler", "ları", "nın",
            "iin", "ista", "ssa", "ában", "ből", "ului", "ilor", "ové", "ami", "ów", "ų", "iem", "ak", "ek", "ga",
            "ta", "ien", "ies", "ied", "ying", "ful", "less", "able", "ical", "ique", "ismo", "isme", "ija")
_TEXT = " ".join(root + end for root in _ROOTS for end in _ENDINGS) + " " + " ".join(t for t, _ in TEXTS)


@pytest.mark.parametrize("code", sorted(variants.MARC_STEMMERS))
def test_stems_split_at_spaces_give_the_tokens_the_regex_gives(code):
    """The ``stem`` field is split at spaces (``index.embedded_doc.STEM_TOKENIZER``), not by the text fields'
    regex: sound because every stem is letters only, one space apart, whatever the language's stemmer."""
    stems = document_stems(_TEXT, [code])
    assert all(stem.isalpha() for stem in stems.split(" "))
    assert analyzer(Tokenizer.whitespace()).analyze(stems) == analyzer().analyze(stems)


def test_ascii_text_gives_the_words_the_unicode_class_gives():
    """``words`` finds an ASCII text's words with ``[a-z]+``: the same as the Unicode class on every ASCII
    character, punctuation, digits and underscores between words included."""
    text = "".join(chr(c) for c in range(128)) + " Colour_Theory 2nd-ed. O'Brien's CAT9dog x"
    unicode_words = [w for w in variants._WORD.findall(text.casefold()) if w.isascii()]
    assert words(text) == unicode_words
    assert words("Ça s'écrit") == ["ca", "s", "ecrit"]
