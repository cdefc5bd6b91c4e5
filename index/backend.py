"""What every search backend does, independent of the engine behind it.

The semantics here are the contract: the embedded (tantivy) backend and the
Elasticsearch backend must give the same answers to the same ``SearchQuery``.

* ``text`` is what a reader typed.  It is never parsed as engine syntax: words
  must all match (in any searchable field), ``"quoted words"`` must match as a
  phrase, a word starting with ``-`` must not match.  Chinese, Japanese and
  Korean text is matched character by character as a phrase, so ``中国``
  finds ``中国历史``.  A text that is an ISBN (10 or 13, with or without
  hyphens) matches that ISBN exactly, whichever form the record had.
* ``fields`` are advanced-search fields (``title``, ``author``, ``subject``,
  ``publisher``, ``isbn``, ``issn``, ``callnumber``, ``classification``), each
  with the same word rules, all ANDed.  ``isbn``/``issn`` match the identifier
  in any form; ``callnumber`` and ``classification`` match a leading part
  (``I247`` finds ``I247.5/123``).
* ``filters`` narrow by facet value: every value given must match (drill-down),
  so facet counts always describe the current result set.  Facet values come most
  records first; values with equal counts in value order (years numerically).  ``year`` also takes
  ranges: ``"1990-1999"``, ``"1990-"``, ``"-1999"``.
* ``any_of`` scopes a search: for each facet named, a document must have at
  least one of the values (a region, or the members of a named group of
  libraries from ``sources.yaml``).  Facet counts describe the scoped set.
* ``sort``: ``relevance`` (default), ``year`` (oldest first), ``-year`` (newest
  first) or ``title``; records without a year sort last either way.
* ``group_works``: hits are works, not records: the best-ranked record of each work with its other
  editions, ``total`` the number of works (:mod:`index.works`).
* ``offset + limit`` is capped at :data:`MAX_WINDOW`, like Elasticsearch's
  ``max_result_window``; ``limit=0`` asks for the count and facets only.
* Forgiving: a word also matches its Snowball stem and American spelling
  (``poem`` finds *Poems*, ``colour`` finds *Color*; :mod:`index.variants`), and
  pinyin run together (``hongloumeng``, ``HongLouMeng``, tone marks or digits)
  matches as syllables (:mod:`index.pinyin_input`).  A search that finds nothing
  gets the typo pass and a ``suggestion`` (:mod:`index.forgiving`).
* Relevance: an exact title match comes first, then titles beginning with the text; among similar matches, records
  held by more libraries (:data:`HOLDING_BOOSTS`) and recent ones rank a little higher.
* ``suggest(text)``: autocomplete, titles/authors/subjects beginning with what was typed, Han or
  pinyin too, most-held first (:mod:`index.suggest`).
* ``browse(kind, start, scheme=, size=, neighbours=, backwards=)``: a page of the ``author`` or
  ``subject`` list (headings A–Z from ``start``, with record counts) or the ``shelf`` list of a
  CLC or LCC class (records in class-number order around ``start``) (:mod:`index.browse`).
* ``add`` replaces a document with the same ``id``; nothing added, deleted or
  cleared is visible to searches until ``commit``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .browse import BrowsePage

#: Facets every backend computes, in display order.
FACETS = ("library", "region", "language", "format", "year", "subject", "classification")
#: Facets a results page counts only when the reader asks for them or filters on them: the subject facet's
#: ~100,000 top-level headings (at 250k records) cost five times the other six facets together, however few
#: records match (BENCHMARKS.md, "facet14").
ON_REQUEST = ("subject",)
#: Advanced-search fields.
FIELDS = ("title", "author", "subject", "publisher", "isbn", "issn", "callnumber", "classification")
SORTS = ("relevance", "year", "-year", "title")
MAX_WINDOW = 10_000
DEFAULT_FACET_SIZE = 30
#: Ranking with ``sort="relevance"`` and typed text: constant score added when the whole text is the title …
EXACT_TITLE_BOOST = 20.0
#: … when a title (or its pinyin, run together or not) begins with the whole text, from this many characters …
TITLE_PREFIX_BOOST, TITLE_PREFIX_MIN = 3.0, 4
#: … (of the text's first this many characters: a long literal makes tantivy's prefix automaton slow to build).
TITLE_PREFIX_MAX = 24
#: … for records held by at least N libraries (each step adds its boost) …
HOLDING_BOOSTS = ((2, 0.5), (4, 0.5), (8, 0.5), (16, 0.5))
#: … and for records published in the last N years.
RECENT_YEARS, RECENT_BOOST = 15, 0.5
#: A typed word's other forms: its stems (below the word as typed, so original forms rank first) …
STEM_BOOST = 0.8
#: … pinyin typed run together, as a phrase of syllables in the ``pinyin`` field …
PINYIN_BOOST = 0.5
#: … and, in the typo pass (:mod:`index.forgiving`), near spellings in these fields.
FUZZY_FIELDS = (("title", 4.0), ("all", 1.0), ("pinyin", 0.5))

_YEAR_RANGE = re.compile(r"^\s*(\d{1,4})?\s*[-–]\s*(\d{1,4})?\s*$")


class SearchError(Exception):
    """The search backend failed (not the reader's query, which never fails)."""


class QueryError(SearchError, ValueError):
    """A ``SearchQuery`` that cannot be run (unknown sort, facet or field)."""


@dataclass
class SearchQuery:
    text: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    offset: int = 0
    limit: int = 20
    sort: str = "relevance"
    fields: dict[str, str] = field(default_factory=dict)
    #: which facets to compute (None: all of :data:`FACETS`) and how many values each
    facets: tuple[str, ...] | None = None
    facet_size: int = DEFAULT_FACET_SIZE
    #: scope: facet name → values, at least one of which must match (OR within, AND across names)
    any_of: dict[str, list[str]] = field(default_factory=dict)
    #: typed words (folded, lowercase) matched within a few edits: set by :mod:`index.forgiving`'s typo pass
    fuzzy: tuple[str, ...] = ()
    #: those of them allowed one edit only: words found as typed, tried as typos for others
    fuzzy_one: tuple[str, ...] = ()
    #: page through works, each hit with its other editions (:mod:`index.works`)
    group_works: bool = False

    def validate(self) -> "SearchQuery":
        """Check names and clamp numbers; raise :class:`QueryError` for programming errors."""
        if self.sort not in SORTS:
            raise QueryError(f"unknown sort {self.sort!r}; expected one of {', '.join(SORTS)}")
        for name in self.filters:
            if name not in FACETS:
                raise QueryError(f"unknown filter {name!r}; expected one of {', '.join(FACETS)}")
        for name in self.any_of:
            if name not in FACETS:
                raise QueryError(f"unknown scope {name!r}; expected one of {', '.join(FACETS)}")
        for name in self.fields:
            if name not in FIELDS:
                raise QueryError(f"unknown field {name!r}; expected one of {', '.join(FIELDS)}")
        for name in self.facets or ():
            if name not in FACETS:
                raise QueryError(f"unknown facet {name!r}; expected one of {', '.join(FACETS)}")
        self.offset = min(max(int(self.offset), 0), MAX_WINDOW)
        self.limit = min(max(int(self.limit), 0), MAX_WINDOW - self.offset)
        self.facet_size = max(int(self.facet_size), 1)
        return self


@dataclass
class Hit:
    id: str
    score: float
    doc: dict
    #: with ``group_works``: other records of this work matching the query, in the query's order
    editions: list[dict] = field(default_factory=list)


@dataclass
class SearchResults:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]
    took_ms: float
    #: "Did you mean": the query with mistyped words corrected from the catalogue's own words
    suggestion: str = ""
    #: True when nothing matched as typed and these are the results of the corrected (or fuzzy) query
    corrected: bool = False
    #: with ``group_works``: ``total`` counts works; records matching, and whether ``total`` is "about"
    records: int | None = None
    total_is_estimate: bool = False


@runtime_checkable
class SearchBackend(Protocol):
    def add(self, docs: Iterable[dict], fresh: bool = False) -> None:
        """Index ``docs``, replacing any document with the same id; ``fresh`` promises there is none (a
        first build or a rebuild, each entry once), so a backend may skip the replacing: tantivy holds each
        delete until the commit (~1.2 KB each, ~1.8 GB in a one-commit rebuild of 1.5M entries)."""
    def delete(self, ids: Iterable[str]) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None:
        """Drop what was added or deleted since the last commit (a failed stage's half-done work), so a
        later commit in the same process cannot publish it; the backend stays open."""
    def search(self, q: SearchQuery) -> SearchResults: ...
    def get(self, id: str) -> dict | None: ...
    def suggest(self, text: str, limit: int = 8) -> list[dict]: ...
    def browse(self, kind: str, start: str = "", **options) -> "BrowsePage": ...
    def count(self) -> int: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


def year_range(value: str) -> tuple[int | None, int | None] | None:
    """``"1990"`` → (1990, 1990); ``"1990-1999"``, ``"1990-"``, ``"-1999"``; None if not a year."""
    value = value.strip()
    if value.isdigit() and len(value) <= 4:
        return int(value), int(value)
    match = _YEAR_RANGE.match(value)
    if not match or not any(match.groups()):
        return None
    low, high = (int(g) if g else None for g in match.groups())
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


def page_facets(filters: Mapping[str, object], expanded: Iterable[str] = ()) -> tuple[str, ...]:
    """The facets a results page counts: all but those :data:`ON_REQUEST`, which count once the reader
    expands them (``expanded``) or filters on them (so a chosen subject keeps its count beside it)."""
    asked = set(expanded) | set(filters)
    return tuple(f for f in FACETS if f not in ON_REQUEST or f in asked)
