"""Elasticsearch queries: a :class:`~index.backend.SearchQuery` → the query, facet and sort bodies.

Built from the field tables below, which the mappings in :mod:`index.elastic`
are derived from too: adding a facet or an advanced-search field is one line
in :data:`FACET_FIELDS` or :data:`ADVANCED_FIELDS` (a ``holdings.`` field is
searched as nested); importing this module fails naming the table when a
name in ``FACETS``/``FIELDS`` has no entry.  Text is folded exactly as at
index time (:func:`fold`), so both sides meet.
"""
from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping

from normaliser.text import fold_for_search, has_han

from . import forgiving, works
from .backend import (
    EXACT_TITLE_BOOST, FACETS, FIELDS, FUZZY_FIELDS, HOLDING_BOOSTS, PINYIN_BOOST, RECENT_BOOST, RECENT_YEARS,
    STEM_BOOST, TITLE_PREFIX_BOOST, TITLE_PREFIX_MAX, TITLE_PREFIX_MIN, SearchQuery, year_range,
)
from .pinyin_input import segmentations
from .suggest import KEY_FIELDS
from .querytext import Clause, as_isbn13, as_issn, isbn_forms, parse_text, prefix_key, title_key
from .variants import phrase_stems, query_stems, words

NESTED = "holdings"
#: Text fields that also get the ``bigrams`` subfield (relevance for Chinese queries).
CJK_FIELDS = ("title", "author", "subject")
#: Fields a free-text word is looked up in, with their boosts (as the embedded backend).
TEXT_BOOSTS = (("title", 4.0), ("author", 2.0), ("subject", 1.5), ("publisher", 1.0), ("all", 1.0),
               ("pinyin", 0.5))
#: Terms a fuzzy word may expand to (ES's default, 50, loses the right word in a big catalogue).
FUZZY_EXPANSIONS = 200
#: Facet → ES field; a ``holdings.`` field is a nested one (counted per record via reverse_nested).
FACET_FIELDS = {"library": "holdings.source", "region": "holdings.region", "language": "language",
                "format": "format", "year": "year", "subject": "subject_facet", "classification": "class_facet"}
#: Facets counted on a flat copy of a nested field: the same per-record counts, about 5× cheaper than a
#: nested terms aggregation with reverse_nested (measured in bench/search_backends.py).  Filters stay nested.
FACET_AGG_FIELDS = {"library": "libraries", "region": "regions"}
#: Advanced-search field → ES text field (``isbn`` is matched exactly, see ``_field_query``).
ADVANCED_FIELDS = {"title": "title", "author": "author", "subject": "subject", "publisher": "publisher",
                   "isbn": "isbn", "issn": "issn", "callnumber": "callnumber_key",
                   "classification": "classification_key"}
#: Advanced fields matched by the beginning of a value (as the embedded backend's regex prefix).
PREFIX_FIELDS = ("callnumber_key", "classification_key")
SORTS = {"year": [{"year": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
         "-year": [{"year": {"order": "desc", "missing": "_last"}}, {"id": "asc"}],
         "title": [{"title_sort": {"order": "asc"}}, {"id": "asc"}]}   # ids break ties: stable pages


def _check_tables() -> None:
    missing = [f for f in FACETS if f not in FACET_FIELDS] + [f for f in FIELDS if f not in ADVANCED_FIELDS]
    if missing:
        raise RuntimeError(f"index.elastic_query has no mapping for {', '.join(missing)}: add it to FACET_FIELDS "
                           "or ADVANCED_FIELDS")


_check_tables()


_LATIN_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                                "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "ı": "i"})
_ACCENTS = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """:func:`fold_for_search`, then Latin accents off (``Müller`` → ``Muller``; kana keep their marks)."""
    text = fold_for_search(text)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS))
    return unicodedata.normalize("NFC", _ACCENTS.sub("", text))


def build_query(q: SearchQuery) -> dict:
    """The ``query`` of a search body: free text, advanced fields, facet filters and scopes."""
    must: list[dict] = []
    must_not: list[dict] = []
    should: list[dict] = []
    text = fold_for_search(q.text.strip())   # full-width digits and hyphens of a pasted ISBN too
    isbn = as_isbn13(text)
    if isbn:
        must.append({"terms": {"isbn": isbn_forms(isbn)}})
    else:
        _clauses(parse_text(text), TEXT_BOOSTS, must, must_not, should, forgiving.distances(q))
        issn = as_issn(text)
        if issn and must:  # an ISSN, or the same characters as words
            must = [{"bool": {"should": [{"term": {"issn": issn}}, {"bool": {"must": must}}],
                              "minimum_should_match": 1}}]
    for name, value in q.fields.items():
        if value and value.strip():
            _field_query(name, value, must, must_not, should)
    filters = [_filter(name, value) for name, values in q.filters.items() for value in values]
    for name, values in q.any_of.items():   # a scope: at least one of the values
        options = [_filter(name, v) for v in values if v]
        filters.append({"bool": {"should": options, "minimum_should_match": 1}} if options else {"match_none": {}})
    if q.text.strip() and q.sort == "relevance":
        should.extend(ranking(q.text))
    query: dict = {"bool": {"must": must or [{"match_all": {}}], "filter": filters, "must_not": must_not}}
    if should:
        query["bool"]["should"] = should
    return query

def ranking(text: str) -> list[dict]:
    """The gentle boosts of :mod:`index.backend`: exact title, holdings count, recency."""
    boosts = [{"constant_score": {"filter": {"range": {"library_count": {"gte": least}}}, "boost": score}}
              for least, score in HOLDING_BOOSTS]
    boosts.append({"constant_score": {"filter": {"range": {"year": {"gte": time.gmtime().tm_year - RECENT_YEARS}}},
                                      "boost": RECENT_BOOST}})
    key = title_key(text)
    if key:
        boosts.append({"constant_score": {"filter": {"term": {"title_key": key}}, "boost": EXACT_TITLE_BOOST}})
    if len(key) >= TITLE_PREFIX_MIN:
        boosts.append({"constant_score": {"filter": {"prefix": {KEY_FIELDS["title"]: key[:TITLE_PREFIX_MAX]}},
                                          "boost": TITLE_PREFIX_BOOST}})
    return boosts


def _field_query(name: str, value: str, must: list, must_not: list, should: list) -> None:
    field = ADVANCED_FIELDS[name]
    if field == "isbn":
        isbn = as_isbn13(value)
        compact = value.replace("-", "").replace(" ", "").upper()
        must.append({"terms": {"isbn": isbn_forms(isbn)}} if isbn else {"term": {"isbn": compact}})
    elif field in PREFIX_FIELDS:
        key = prefix_key(value)
        if key:
            must.append({"prefix": {field: key}})
    elif field == "issn":
        compact = re.sub(r"[\s-]", "", value).upper()
        must.append({"term": {"issn": as_issn(f"{compact[:4]}-{compact[4:]}") or value.strip()}})
    elif field.startswith(NESTED + "."):   # a field of the holdings: searched inside the nested copies
        inner_must: list[dict] = []
        inner_not: list[dict] = []
        _clauses(parse_text(value), ((field, 1.0),), inner_must, inner_not, [])
        must.extend({"nested": {"path": NESTED, "query": q}} for q in inner_must)
        must_not.extend({"nested": {"path": NESTED, "query": q}} for q in inner_not)
    else:
        _clauses(parse_text(value), ((field, 1.0),), must, must_not, should)

def _clauses(clauses: list[Clause], fields, must: list, must_not: list, should: list,
             fuzzy: Mapping[str, int] | None = None) -> None:
    for clause in clauses:
        if not clause.phrase and as_isbn13(clause.text):
            query = {"terms": {"isbn": isbn_forms(as_isbn13(clause.text))}}
        else:
            text = fold(clause.text)
            # a word that analyses to no token (punctuation) is no condition, as in the embedded backend
            query = {"multi_match": {"query": text, "type": "phrase", "tie_breaker": 0.1,
                                     "fields": [f"{f}^{b:g}" for f, b in fields],
                                     "zero_terms_query": "none" if clause.negated else "all"}}
            if fields is TEXT_BOOSTS and not clause.phrase and not clause.negated:
                others = _forgiving(clause.text, fuzzy or {})
                if others:
                    query = {"dis_max": {"queries": [query, *others], "tie_breaker": 0.1}}
            if not clause.negated and has_han(text):
                cjk = [f"{f}.bigrams^{b:g}" for f, b in fields if f in CJK_FIELDS]
                if cjk:
                    should.append({"multi_match": {"query": text, "fields": cjk}})
        (must_not if clause.negated else must).append(query)


def _forgiving(word: str, fuzzy: Mapping[str, int]) -> list[dict]:
    """A typed word's other forms: its stems, its pinyin syllables, and (in the typo pass) near spellings."""
    out: list[dict] = []
    stems = query_stems(word)
    if stems:
        out.append({"terms": {"stem": stems, "boost": STEM_BOOST}})
    elif len(several := phrase_stems(word)) > 1:
        out.append({"match_phrase": {"stem": {"query": " ".join(several), "boost": STEM_BOOST}}})
    out += [{"match_phrase": {"pinyin": {"query": " ".join(syllables), "boost": PINYIN_BOOST}}}
            for syllables in segmentations(word)]
    token = words(word)
    if len(token) == 1 and token[0] in fuzzy:
        distance = fuzzy[token[0]]
        out += [{"fuzzy": {name: {"value": token[0], "fuzziness": distance, "transpositions": True,
                                  "prefix_length": 0, "max_expansions": FUZZY_EXPANSIONS, "boost": boost}}}
                for name, boost in FUZZY_FIELDS]
    return out

def _filter(name: str, value: str) -> dict:
    field = FACET_FIELDS[name]
    if name == "year":
        bounds = year_range(value)
        if bounds is None:
            return {"match_none": {}}
        rng = {k: v for k, v in (("gte", bounds[0]), ("lte", bounds[1])) if v is not None}
        return {"range": {field: rng}}
    term = {"term": {field: value}}
    if field.startswith(NESTED + "."):
        return {"nested": {"path": NESTED, "query": term}}
    return term

def facet_agg(name: str, size: int) -> dict:
    """The aggregation counting one facet's values per record."""
    field = FACET_AGG_FIELDS.get(name) or FACET_FIELDS[name]
    if field.startswith(NESTED + "."):
        # count records, not copies: a record held twice in a region counts once
        return {"nested": {"path": NESTED},
                "aggs": {"values": {"terms": {"field": field, "size": size,
                                              "order": [{"records": "desc"}, {"_key": "asc"}]},
                                    "aggs": {"records": {"reverse_nested": {}}}}}}
    return {"terms": {"field": field, "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}


def buckets(agg: dict) -> list[tuple[str, int]]:
    """(value, records) pairs from a :func:`facet_agg` result, nested or flat."""
    if "values" in agg:
        return [(str(b["key"]), int(b["records"]["doc_count"])) for b in agg["values"]["buckets"]]
    return [(str(b.get("key_as_string", b["key"])), int(b["doc_count"])) for b in agg.get("buckets", [])]


def search_bodies(q: SearchQuery, names) -> list[dict]:
    """The searches of one results page: the hits, the records matching, the facets ``names`` and (with
    ``group_works``) one hit per work (:mod:`index.works`) and the number of works — exact up to
    ``EXACT_UP_TO`` records, then HyperLogLog's.  The works' other editions are asked afterwards
    (:func:`editions_body`).

    A browse (filters, no text) asks its counts in a search of their own, without hits: that is what the
    shard request cache keeps, and a browse ("held in Nanjing, books") matches most of the catalogue, costs a
    pass over every match per facet, and is asked again and again, by every reader, until the next refresh.
    A search with text is one search: its counts are seldom asked twice, and a second search would evaluate
    the query twice."""
    query = build_query(q)
    aggs = {name: facet_agg(name, q.facet_size) for name in names}
    if q.group_works:
        aggs["_works"] = {"cardinality": {"field": works.FIELD, "precision_threshold": works.EXACT_UP_TO}}
    page: dict = {"query": query, "from": q.offset, "size": q.limit, "_source": ["doc"]}
    if q.sort in SORTS:
        page["sort"] = SORTS[q.sort]
    if q.group_works:
        page["collapse"] = {"field": works.FIELD}
    if q.text.strip():
        return [{**page, "track_total_hits": True, "aggs": aggs}]
    return [{"query": query, "size": 0, "track_total_hits": True, "aggs": aggs}, {**page, "track_total_hits": False}]


def editions_body(q: SearchQuery, keys: list[str]) -> dict:
    """The matching records of the works ``keys`` (a page's), best first in the query's own order, up to
    ``EDITIONS + 1`` a work.

    What ``collapse``'s ``inner_hits`` returns — the same query and order, restricted to one work — in one
    search for the page instead of one search per work (twenty searches a page cost more than the page's)."""
    top: dict = {"size": works.EDITIONS + 1, "_source": ["doc"]}
    if q.sort in SORTS:
        top["sort"] = SORTS[q.sort]
    return {"query": {"bool": {"must": [build_query(q)], "filter": [{"terms": {works.FIELD: keys}}]}},
            "size": 0, "track_total_hits": False,
            "aggs": {"works": {"terms": {"field": works.FIELD, "size": len(keys), "execution_hint": "map"},
                               "aggs": {"editions": {"top_hits": top}}}}}
