"""The typo pass and "Did you mean", the same for every backend.

A search that finds nothing is looked at word by word: a word that on its own
finds nothing (in any field, stemmed or as pinyin) is presumed mistyped; when
fuzzing those finds nothing either, every word is, one edit each (``shot horn
cattle``: a real word mistyped for another is one letter off, and a two-edit
automaton over a 250k catalogue's term dictionary costs ~25 ms a word).  Those
words are then matched fuzzily (:func:`edit_distance`: one edit for short words,
two for long ones; a swap of neighbours is one edit) while the others stay
exact.  From the records that fuzzy pass finds, each mistyped word is replaced
by the nearest word those records really contain — the catalogue's own terms,
so names, pinyin and foreign words are suggested as readily as English — and
the corrected query is run as an ordinary one.  The reader gets its results,
flagged ``corrected``, with the correction as ``suggestion`` ("Did you mean").

When every word finds something alone and the text finds records without the
filters (facet filters, scopes, advanced-search fields), the filters found
nothing, not the words: no word is "corrected" into one that happens to pass
them, and the fuzzy pass, the typo pass's dearest step, is not run.

Only zero-hit searches pay for any of this: a search that finds something costs
nothing extra.  Backends call :func:`search` with their plain, one-pass search.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from rapidfuzz.distance import OSA

from normaliser.text import fold_for_search, has_han

from .backend import SearchQuery, SearchResults
from .querytext import as_isbn13, parse_text
from .variants import words

#: Records of the fuzzy pass whose words are candidates for a correction.
CANDIDATE_HITS = 50
#: Words shorter than this are never presumed mistyped (``of``, ``la``).
MIN_FUZZY_LENGTH = 3
#: Document keys whose words may replace a mistyped one.
CANDIDATE_KEYS = ("title", "title_alt", "authors", "subjects", "series", "publisher", "pinyin")

_TYPED_WORD = re.compile(r"[^\W_]+")

Search = Callable[[SearchQuery], SearchResults]


def edit_distance(word: str) -> int:
    """How many edits a mistyped word may be from the right one: 1 up to five letters, 2 beyond."""
    if len(word) < MIN_FUZZY_LENGTH:
        return 0
    return 1 if len(word) <= 5 else 2


def search(run: Search, q: SearchQuery) -> SearchResults:
    """``run(q)``; when that finds nothing, the typo pass and a corrected query (see the module doc)."""
    results = run(q)
    if results.total or q.fuzzy or not q.text.strip():
        return results
    typed = typed_words(q)
    alone = {w: _count(run, w) for w in typed}
    unknown = [w for w in typed if not alone[w]]
    if not unknown and _restricted(q) and _count(run, q.text, alone):
        return results  # every word is real and the text finds records: the filters found nothing, not a typo
    # the words that find nothing alone first; then every word, one edit each (a real word can be a typo
    # for another)
    real = tuple(w for w in typed if w not in unknown)
    tries = [(tuple(unknown), ())] if unknown else []
    if real:
        tries.append((tuple(typed), real))
    for fuzzy_words, one in tries:
        fuzzy = run(replace(q, fuzzy=fuzzy_words, fuzzy_one=one, offset=0, limit=CANDIDATE_HITS, facets=(),
                            sort="relevance", group_works=False))  # only its records' words are read
        if fuzzy.total:
            break
    else:
        return results
    suggestion = correction(q.text, list(fuzzy_words), (h.doc for h in fuzzy.hits), one)
    if suggestion:
        corrected = run(replace(q, text=suggestion))
        if corrected.total:
            corrected.suggestion, corrected.corrected = suggestion, True
            return corrected
    final = run(replace(q, fuzzy=fuzzy_words, fuzzy_one=one))
    final.suggestion, final.corrected = suggestion, True
    return final


def _count(run: Search, text: str, known: dict[str, int] | None = None) -> int:
    """How many records ``text`` alone finds (no filters, facets or page): from ``known`` when it is one of
    its words, as a one-word query is."""
    key = fold_for_search(text).strip().lower()
    if known and key in known:
        return known[key]
    return run(SearchQuery(text=text, limit=0, facets=())).total


def _restricted(q: SearchQuery) -> bool:
    """Whether anything besides the typed text narrows ``q`` (filters, scopes, advanced-search fields)."""
    return any(q.filters.values()) or bool(q.any_of) or any(v and v.strip() for v in q.fields.values())


def distances(q: SearchQuery) -> dict[str, int]:
    """Each fuzzily matched word of ``q`` → the edits it may be from a catalogue word (for the backends)."""
    return {w: min(edit_distance(w), 1 if w in q.fuzzy_one else 2) for w in q.fuzzy}


def typed_words(q: SearchQuery) -> list[str]:
    """The typed words that may be mistyped (folded, lowercase), in query order: not quoted, excluded, an
    ISBN, Han, or shorter than :data:`MIN_FUZZY_LENGTH`."""
    found: list[str] = []
    for clause in parse_text(fold_for_search(q.text)):
        if clause.phrase or clause.negated or as_isbn13(clause.text) or has_han(clause.text):
            continue
        token = words(clause.text)
        if len(token) == 1 and edit_distance(token[0]) and token[0] not in found:
            found.append(token[0])
    return found


def correction(text: str, unknown: list[str], docs: Iterable[dict], one: Iterable[str] = ()) -> str:
    """``text`` with each unknown word replaced by the nearest word of ``docs`` ("" if none is near enough);
    the words in ``one`` at most one edit away, as the fuzzy pass that found ``docs`` allowed."""
    counts: Counter[str] = Counter()
    for doc in docs:
        for key in CANDIDATE_KEYS:
            value = doc.get(key) or ""
            for part in ([value] if isinstance(value, str) else value):
                counts.update(set(words(part)))
    # a word the found records contain is right as typed
    fixes = {word: best for word in unknown if word not in counts and (best := nearest(word, counts, 1 if word in one else 2))}
    if not fixes:
        return ""
    # replace typed words whose folded form is a mistyped one; everything else stays as typed
    return _TYPED_WORD.sub(lambda m: fixes.get("".join(words(m.group())), m.group()), fold_for_search(text))


def nearest(word: str, counts: Counter[str], most: int = 2) -> str:
    """The candidate fewest edits from ``word``.  Ties go to the likelier typo — a letter dropped or two
    neighbours swapped (``flods`` → ``floods`` before ``foods``) — then to the commoner word, then the
    alphabetically first."""
    limit = min(edit_distance(word), most)
    best: tuple[int, int, int, str] | None = None
    for candidate, count in counts.items():
        if abs(len(candidate) - len(word)) > limit or candidate == word:
            continue
        distance = OSA.distance(word, candidate, score_cutoff=limit)
        if distance > limit:
            continue
        likely = 0 if len(candidate) > len(word) or sorted(candidate) == sorted(word) else 1
        if best is None or (distance, likely, -count, candidate) < best:
            best = (distance, likely, -count, candidate)
    return best[3] if best else ""
