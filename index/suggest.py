"""Autocomplete: titles, authors and subjects that begin with what the reader has typed so far.

Every search document carries *keys* (:func:`keys`): its titles, authors and subject headings in
:func:`~index.querytext.title_key` form (case, accents, script and punctuation aside), and for Han
ones their toneless pinyin too, with and without spaces, so ``红楼``, ``紅樓``, ``hong lou`` and
``honglou`` all complete to 红楼梦.  A backend finds the documents with a key beginning with the typed
prefix (most-held first, :data:`CANDIDATES` of them) and :func:`pick` turns them into suggestions,
the same way for both backends.
"""
from __future__ import annotations

from itertools import chain

from normaliser.memo import memoised
from normaliser.text import has_han, pinyin

from .querytext import title_key

#: Keyword fields the suggestion keys are indexed in, by suggestion kind.
KEY_FIELDS = {"title": "suggest_title", "author": "suggest_author", "subject": "suggest_subject"}
#: Documents a backend hands to :func:`pick`.
CANDIDATES = 40
DEFAULT_LIMIT = 8
#: How many of each kind come first (titles are what readers mostly look for).
SHARES = {"title": 5, "author": 2, "subject": 1}
#: Prefixes shorter than this (in characters; one Han character is enough) suggest nothing.
MIN_PREFIX = 2
#: Beginnings of the keys up to this many characters are indexed as terms of their own (:func:`starts`), in
#: this field: a reader's first keystrokes, whose prefixes begin tens of thousands of keys, are then one
#: term to look up, not a prefix to expand (60–130 ms for ``th`` at 250k records, under 5 ms as a term).
START_MAX = 4
START_FIELD = "suggest_start"


@memoised(1 << 17)
def _forms(text: str) -> tuple[str, ...]:
    """The keys a value is found by (its key first).  Cached: a keystroke's candidates are mostly the
    previous keystroke's, and a value's pinyin and folding cost more than the engine's whole lookup; the
    index stage asks for every title, name and subject heading of every document (at 200k: 302,928 asks,
    71,804 values — an LRU of 32,768 missed 126,396 times; a dict, one lookup a hit, twice the size)."""
    key = title_key(text)
    forms = [key]
    if has_han(text):
        spaced = title_key(pinyin(text))
        forms += [spaced, spaced.replace(" ", "")]
    for article in ("the ", "a ", "an "):
        if key.startswith(article):
            forms.append(key[len(article):])
    return tuple(f for f in dict.fromkeys(forms) if f)


def _titles(doc: dict) -> list[str]:
    return [t for t in [doc.get("title_original", ""), doc.get("title", ""), *doc.get("title_alt", [])] if t]


def _values(doc: dict, kind: str) -> list[str]:
    if kind == "title":
        return [proper_title(t) for t in _titles(doc)]
    if kind == "author":
        return list(doc.get("authors") or [doc.get("author", "")])
    return list(doc.get("subject_headings", []))


def proper_title(title: str) -> str:
    """A title up to its statement of responsibility (``"Macbeth / William Shakespeare"`` → ``"Macbeth"``)."""
    return title.split(" / ")[0].strip(" /:;,.")


def keys(doc: dict) -> dict[str, list[str]]:
    """Field → the keys a document is found by when a reader types their beginning."""
    return {field: list(dict.fromkeys(chain.from_iterable(map(_forms, filter(None, _values(doc, kind))))))[:40]
            for kind, field in KEY_FIELDS.items()}


def starts(keys: dict[str, list[str]]) -> list[str]:
    """The beginnings of the keys (:func:`keys`) a reader may have typed, up to :data:`START_MAX` characters:
    a prefix that short finds exactly the documents holding it among their starts."""
    found: dict[str, None] = {}
    for values in keys.values():
        for key in values:
            first = MIN_PREFIX if key.isascii() or not has_han(key[:1]) else 1   # most keys: no call
            for n in range(first, min(len(key), START_MAX) + 1):
                found[key[:n]] = None
    return list(found)


def prefix_of(text: str) -> str:
    """The typed text in key form; "" when too short to suggest anything."""
    key = title_key(text)
    if not key or (len(key) < MIN_PREFIX and not has_han(key)):
        return ""
    # a trailing space is part of what was typed: "hong " completes to "hong lou meng", not "hongkong"
    return key + " " if text.endswith(" ") else key


def pick(docs: list[dict], prefix: str, limit: int = DEFAULT_LIMIT) -> list[dict]:
    """Suggestions ``{text, kind, id}`` from ``docs`` (most-held first): each value one of whose forms begins
    with ``prefix``, each text once; up to :data:`SHARES` of each kind first, then whatever else matched."""
    found: dict[str, list[dict]] = {kind: [] for kind in KEY_FIELDS}
    seen: set[tuple[str, str]] = set()
    for kind in KEY_FIELDS:
        for doc in docs:
            for value in _values(doc, kind):
                forms = _forms(value) if value else ()
                item = (kind, forms[0] if forms else "")
                if forms and item not in seen and any(f.startswith(prefix) for f in forms):
                    seen.add(item)
                    found[kind].append({"text": value, "kind": kind, "id": doc["id"] if kind == "title" else None})
    first = [s for kind, share in SHARES.items() for s in found[kind][:share]]
    rest = [s for kind in KEY_FIELDS for s in found[kind][SHARES[kind]:]]
    return (first + rest)[:limit]
