"""Browse lists: authors A–Z, subjects, and the shelf list by CLC or LCC class, on any backend.

A browse list is an alphabetical walk through headings, not a search: a reader
starts at "Smith" (or at 曹, which files under *cao*, or at class ``I247``) and
sees the headings from there on, each with how many records carry it, and the
few before it.  Both backends index one keyword per heading (:func:`keys`)
whose value sorts as the list should, and walk those values ``after`` a value,
ascending for what follows and descending for the neighbours before:
Elasticsearch with a composite aggregation, the embedded index through its
term dictionary (:mod:`index.embedded_terms`, in the same code-point order).
So the two backends give the same page for the same start; only the walk
differs.

Values are ``sort key \\x1f heading`` (``\\x1e`` after the scheme on the shelf
list, and the title and record id after the class there: a shelf list shows
records, one line per class number a record carries).  Sort keys are
:func:`index.documents.sort_key`'s (case and accents ignored, Han by its
pinyin, so Chinese headings interleave with Latin ones as readers in China
expect); class numbers sort as shelves do (:func:`shelf_key`).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from normaliser.memo import memoised

from .documents import sort_key

#: browse kind → the keyword field each backend indexes
FIELDS = {"author": "browse_author", "subject": "browse_subject", "shelf": "browse_shelf"}
#: classification schemes with a shelf list
SHELF_SCHEMES = ("clc", "lcc")
DEFAULT_SIZE, MAX_SIZE, MAX_NEIGHBOURS = 20, 100, 20
_SEP, _SCHEME_SEP = "\x1f", "\x1e"
_KEY_LENGTH = 120
_CONTROL = re.compile(r"[\x00-\x1f]")
_LCC = re.compile(r"^([A-Z]{1,3})\s*(\d+)?(\.\d+)?\s*(.*)$")
_CLC = re.compile(r"^([A-Z]{1,2})\s*([\d.]*)(.*)$")

#: a backend's walk of one keyword field: (field, exclusive start value or None, size, descending) → (value, count)
Walk = Callable[[str, "str | None", int, bool], list[tuple[str, int]]]


class BrowseError(ValueError):
    """A browse request that cannot be answered (unknown kind or scheme)."""


@dataclass
class BrowseEntry:
    heading: str        # as catalogued: "Ruskin, John, 1819-1900", "China -- History", "I247.5"
    count: int          # records carrying it (1 per line on the shelf list)
    key: str            # the indexed value: the cursor for the next or previous page
    id: str = ""        # shelf list: the record on the shelf
    doc: dict | None = None  # shelf list: its search document (title, author, year)


@dataclass
class BrowsePage:
    kind: str
    start: str
    scheme: str = ""
    before: list[BrowseEntry] = field(default_factory=list)   # neighbours before ``start``, in list order
    entries: list[BrowseEntry] = field(default_factory=list)  # ``start`` and what follows
    more_before: bool = False
    more_after: bool = False


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text or "").strip()


def heading_key(heading: str) -> str:
    """Where a heading (or what a reader typed to start from) files in an author or subject list."""
    return sort_key(_clean(heading))[:_KEY_LENGTH]


def shelf_key(scheme: str, value: str) -> str:
    """A class number as shelves order it.

    LCC: letters, then the class number as a number (``DS79`` before ``DS735``),
    then cutters as decimals.  CLC (中图法): letters, then digits one by one,
    the dots being only for legibility (``I207.22`` < ``I21`` < ``I247`` <
    ``I247.5`` < ``I25``), then the rest (``/123`` book numbers, ``-0``).
    """
    value = _clean(value).upper()
    if scheme == "lcc" and (m := _LCC.match(value)):
        letters, whole, decimal, rest = m.groups()
        number = f"{int(whole):05d}{decimal or ''}" if whole else ""
        return f"{letters:<3}{number} {rest}".rstrip()[:_KEY_LENGTH]
    if scheme == "clc" and (m := _CLC.match(value)):
        letters, digits, rest = m.groups()
        return f"{letters}{digits.replace('.', '')}{rest}"[:_KEY_LENGTH]
    return value[:_KEY_LENGTH]


@memoised(1 << 16)
def _heading_value(heading: str) -> str:
    """The browse value of one author or subject as catalogued, "" when nothing is left of it once cleaned.
    Memoised: a catalogue's headings recur (each author 4×, subject 5× among the documents at 200k), and each
    was cleaned twice and its sort key (pinyin, accents) made again (:func:`keys` 15 → 12 µs a document)."""
    clean = _clean(heading)
    return f"{heading_key(clean)}{_SEP}{clean[:200]}" if clean else ""


def keys(doc: dict) -> dict[str, list[str]]:
    """The browse values of a search document, per field of :data:`FIELDS`."""
    shelved = [(c["scheme"], c["value"], value) for c in doc.get("classifications", [])
               if c.get("scheme") in SHELF_SCHEMES and (value := _clean(c.get("value")))]
    # the title's key only for a document on a shelf list
    title = heading_key(doc.get("title_sort") or doc.get("title") or "")[:40] if shelved else ""
    shelf = [f"{scheme}{_SCHEME_SEP}{shelf_key(scheme, raw)}{_SEP}{title}{_SEP}{value}{_SEP}{doc['id']}"
             for scheme, raw, value in shelved]
    return {FIELDS["author"]: list(dict.fromkeys(v for a in doc.get("authors", []) if (v := _heading_value(a)))),
            FIELDS["subject"]: list(dict.fromkeys(v for s in doc.get("subjects", []) if (v := _heading_value(s)))),
            FIELDS["shelf"]: list(dict.fromkeys(shelf))}


def start_value(kind: str, start: str, scheme: str = "") -> str:
    """The value to walk from: a cursor (an entry's ``key``) as it is, else what was typed, as it files."""
    if _SEP in start:
        return start
    if kind == "shelf":
        return f"{scheme}{_SCHEME_SEP}{shelf_key(scheme, start)}"
    return heading_key(start)


def shelf_start(scheme: str, value: str, doc: dict) -> str:
    """The cursor just before ``doc``'s line at class ``value``: the shelf list around a record."""
    title = heading_key(doc.get("title_sort") or doc.get("title") or "")[:40]
    return f"{scheme}{_SCHEME_SEP}{shelf_key(scheme, value)}{_SEP}{title}"


def page(walk: Walk, get: Callable[[str], dict | None], kind: str, start: str = "", *, scheme: str = "",
         size: int = DEFAULT_SIZE, neighbours: int = 0, backwards: bool = False) -> BrowsePage:
    """One page of a browse list: ``size`` entries from ``start`` on and ``neighbours`` before it.

    ``backwards`` gives the ``size`` entries before ``start`` instead (the
    previous page).  A cursor ``start`` is exclusive; a typed one includes
    the headings that file at it.
    """
    if kind not in FIELDS:
        raise BrowseError(f"unknown browse list {kind!r}; expected one of {', '.join(FIELDS)}")
    if kind == "shelf" and scheme not in SHELF_SCHEMES:
        raise BrowseError(f"unknown shelf list scheme {scheme!r}; expected one of {', '.join(SHELF_SCHEMES)}")
    size, neighbours = min(max(int(size), 1), MAX_SIZE), min(max(int(neighbours), 0), MAX_NEIGHBOURS)
    at = start_value(kind, start.strip(), scheme) if start.strip() or kind == "shelf" else None
    prefix = f"{scheme}{_SCHEME_SEP}" if kind == "shelf" else ""
    if backwards:
        size, neighbours = 0, size
    ahead = [b for b in walk(FIELDS[kind], at, size + 1, False) if b[0].startswith(prefix)] if size else []
    behind = [b for b in walk(FIELDS[kind], at, neighbours + 1, True) if b[0].startswith(prefix)] if at else []
    result = BrowsePage(kind=kind, start=start, scheme=scheme if kind == "shelf" else "",
                        more_before=len(behind) > neighbours, more_after=len(ahead) > size)
    result.before = [_entry(kind, v, n, get) for v, n in reversed(behind[:neighbours])]
    result.entries = [_entry(kind, v, n, get) for v, n in ahead[:size]]
    if backwards:
        result.entries, result.before, result.more_after = result.before, [], True
    return result


def _entry(kind: str, value: str, count: int, get: Callable[[str], dict | None]) -> BrowseEntry:
    parts = value.split(_SEP)
    if kind != "shelf":
        return BrowseEntry(heading=parts[-1], count=count, key=value)
    record_id = parts[-1]
    return BrowseEntry(heading=parts[-2], count=count, key=value, id=record_id, doc=get(record_id))
