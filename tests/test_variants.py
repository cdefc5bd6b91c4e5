"""The search documents' stems: remembered per word, the same text as stemming every word afresh."""
from __future__ import annotations

import pytest

from index import variants
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
