"""Word variants for search only: Snowball stems and British/American spellings.

Readers type ``poem`` for *Poems*, ``colour`` for *Color*, ``organisation`` for
*Organization*.  Every search document carries a ``stem`` text: its Latin-script
words spelled the American way and stemmed with the Snowball stemmer of the
record's language (English when the language has none or is unknown).  A reader's
word is looked up there too, stemmed with the stemmers of :data:`QUERY_LANGUAGES`
(the query's language is unknown), at a lower boost than the word as typed, so
original forms still rank first.

Stemming happens here, in Python, for both backends: tantivy and Elasticsearch
only ever see ready-made stems, so the two give the same answers (the ES test
distribution has no language analysers to agree with anyway).
"""
from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

from .querytext import strip_accents

#: MARC language code → Snowball algorithm, for the Latin-script languages a stemmer exists for.
MARC_STEMMERS = {"eng": "english", "fre": "french", "ger": "german", "spa": "spanish", "ita": "italian",
                 "por": "portuguese", "dut": "dutch", "swe": "swedish", "nor": "norwegian", "dan": "danish",
                 "fin": "finnish", "hun": "hungarian", "rum": "romanian", "tur": "turkish", "cat": "catalan",
                 "cze": "czech", "pol": "polish", "lit": "lithuanian", "est": "estonian", "ind": "indonesian",
                 "gle": "irish", "baq": "basque", "epo": "esperanto"}
#: Stemmers a reader's word is stemmed with.  English only: adding French, German… stems of every query
#: word (``china`` → ``chin``) matched unrelated English records; a French word's English stem mostly
#: equals its French one anyway (``poèmes`` → ``poem``).
QUERY_LANGUAGES = ("english",)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_ASCII_WORD = re.compile(r"[a-z]+")

#: British word beginnings → American ones (whole word or with an inflection after).
_BRITISH_STEMS = {
    **{f"{b}our": f"{b}or" for b in ("col", "hon", "lab", "fav", "behavi", "neighb", "hum", "harb", "rum", "vap",
                                     "flav", "sav", "arm", "endeav", "od", "rig", "val", "vig", "parl", "splend",
                                     "clam", "ferv", "ard", "cand", "rance", "tum")},
    **{f"{b}re": f"{b}er" for b in ("cent", "theat", "met", "fib", "lit", "lust", "somb", "spect", "calib",
                                    "meag", "sab", "scep", "maneuv", "manoeuv", "ochre")},
    "defence": "defense", "offence": "offense", "licence": "license", "pretence": "pretense",
    "encyclopaed": "encycloped", "mediaev": "mediev", "paediat": "pediat", "orthopaed": "orthoped",
    "anaem": "anem", "haemo": "hemo", "anaesth": "anesth", "palaeo": "paleo", "gynaec": "gynec",
    "oesoph": "esoph", "oestr": "estr", "foet": "fet", "programme": "program", "grey": "gray",
    "plough": "plow", "mould": "mold", "sceptic": "skeptic", "ageing": "aging", "judgement": "judgment",
    "acknowledgement": "acknowledgment", "jewellery": "jewelry", "aluminium": "aluminum", "cheque": "check",
    "catalogu": "catalog", "dialogu": "dialog", "analogu": "analog", "monologu": "monolog", "prologu": "prolog",
    "epilogu": "epilog", "travelogu": "travelog",
}
_INFLECTION = r"(?:e|s|es|ed|d|ing|ful|fully|ite|ites|able|ably|less|ist|ists|al|ally|ic|ics|ical|y|ian|ians|er|ers)?"
_BRITISH = re.compile(r"^(" + "|".join(sorted(map(re.escape, _BRITISH_STEMS), key=len, reverse=True)) + r")("
                      + _INFLECTION + r")$")
_ISE = re.compile(r"(?<=\w{3})(is|ys)(e|es|ed|ing|ation|ations|er|ers)$")
_DOUBLE_L = re.compile(r"(?<=\w{3}[aeiou])ll(ed|ing|er|ers)$")


@lru_cache(maxsize=1 << 16)  # a catalogue's words repeat (Zipf): three regexes once per distinct word
def american(word: str) -> str:
    """``colours`` → ``colors``, ``organisation`` → ``organization``, ``travelled`` → ``traveled``.

    Applied to index and query alike, so a rewrite of a word that was never British
    (``advise`` → ``advize``) is harmless: both sides meet on the same form.
    """
    match = _BRITISH.match(word)
    if match:
        return _BRITISH_STEMS[match.group(1)] + match.group(2)
    word = _ISE.sub(lambda m: ("iz" if m.group(1) == "is" else "yz") + m.group(2), word)
    return _DOUBLE_L.sub(r"l\1", word)


@lru_cache(maxsize=64)
def _stemmer(algorithm: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(algorithm)


def words(text: str) -> list[str]:
    """The Latin-script words of ``text``, lowercased and accent-folded (Han, kana and digits left out).
    ASCII text (74% of the documents at 200k) has nothing to fold and no other words, and on ASCII
    :data:`_WORD` is ``[a-z]+`` once lowercased: that class, a bitmap to the regex engine, finds them in 8
    µs where the Unicode one takes 13 (a document's 450 characters)."""
    if not text:
        return []
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    return [w for w in _WORD.findall(strip_accents(text).casefold()) if w.isascii()]


#: Words stemmed so far, per algorithm (word → its American-spelled stem).  A catalogue's words repeat
#: (Zipf): a document's words are nearly all known, and a dict lookup spares ``american``'s three regexes and
#: the stemmer's call (74 → 31 µs a document at 1M).  Bounded: past the cap new words are stemmed, not kept.
#: Not ``normaliser.memo.memoised``: a wrapped call per word cost more than the inline ``dict.get`` here.
_STEMMED: dict[str, dict[str, str]] = {}
STEMMED_CAP = 200_000


def document_stems(text: str, languages: list[str] | tuple[str, ...] = ()) -> str:
    """The ``stem`` text of a document: its words American-spelled and stemmed by its language."""
    algorithm = next((MARC_STEMMERS[code] for code in languages if code in MARC_STEMMERS), "english")
    known = _STEMMED.get(algorithm) or _STEMMED.setdefault(algorithm, {})
    found = words(text)
    stems = list(map(known.get, found))
    if None in stems:
        stemmer = _stemmer(algorithm)
        for i, stem in enumerate(stems):
            if stem is None:
                word = found[i]
                stems[i] = stem = stemmer.stemWord(american(word))
                if len(known) < STEMMED_CAP:
                    known[word] = stem
    return " ".join(stems)


def query_stems(word: str) -> list[str]:
    """The stems a reader's single word is looked up by: one per query language, and the word itself (a
    German record's ``Lieder`` is stemmed ``lied``, which a reader types as it is)."""
    found = words(word)
    if len(found) != 1:
        return []
    spelled = american(found[0])
    return list(dict.fromkeys([*(_stemmer(a).stemWord(spelled) for a in QUERY_LANGUAGES), spelled]))


def phrase_stems(text: str) -> list[str]:
    """English stems of a multi-word clause, in order: a phrase on the ``stem`` field."""
    return _stemmer("english").stemWords([american(w) for w in words(text)])
