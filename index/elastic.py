"""The Elasticsearch search backend: the same contract as the embedded one, on a cluster.

Readers search an alias (``unioncat`` by default); the alias points at one
versioned index (``unioncat-v20261124021500123456``).  Incremental updates go
through the alias.  A full rebuild (:meth:`ElasticsearchBackend.clear`) writes
a new versioned index while readers keep using the old one; :meth:`commit`
then moves the alias in one atomic ``_aliases`` call and drops the old index,
so searches never see a half-built catalogue.

Analysis matches the embedded backend's, so both give the same answers:

* Text is folded in Python before Elasticsearch sees it — at index time and at
  query time alike — by :func:`normaliser.text.fold_for_search` (full-width to
  half-width, traditional Han to simplified).
  Latin accents are folded there too (``Müller`` → ``muller``), as tantivy's
  ``ascii_fold`` does for the embedded backend.
* The ``unioncat_text`` analyzer is the standard tokenizer (which makes every
  Han ideograph and kana a token of its own) with lowercasing.  A reader's
  word is matched as a phrase of its tokens (``中国`` finds ``中国历史`` but not
  ``国中``); a ``bigrams`` subfield of the Han-bearing fields (adjacent-token
  bigrams, like the ``cjk`` analyzer) adds relevance for Chinese queries,
  never matching.
* Only analysis parts built into the Elasticsearch server are used (standard
  tokenizer, ``lowercase``, ``shingle``): the ``cjk`` analyzer and
  ``asciifolding`` live in the ``analysis-common`` module, which the small
  distribution the tests run on does not ship, and the index must behave the
  same on the test node and in production.
* Holdings are nested documents (member, library, region, call number,
  location), so "held in region X" is a nested filter and the region and
  library facets count records, not copies.

Writes: :func:`elasticsearch.helpers.streaming_bulk` in chunks, retrying
chunks refused with HTTP 429.  Indices have ``refresh_interval: -1``;
:meth:`commit` refreshes, which is what makes writes visible, as the contract
requires.  Every transport failure becomes a :class:`~index.backend.SearchError`
naming the cluster.

Adding a facet or an advanced-search field: one line in :data:`FACET_FIELDS`
(and, for a facet not taken from the holdings, one in :data:`KEYWORDS`) or in
:data:`ADVANCED_FIELDS` (a ``holdings.`` field is searched as nested); the
mappings and queries are derived from these tables, and importing this module
fails naming the table when a name in ``FACETS``/``FIELDS`` has no entry.
Bump :data:`MAPPING_VERSION` so existing indices are rebuilt.  As in the
embedded backend, the ``classification`` facet counts the documents'
``class_tops`` and the ``callnumber``/``classification`` fields match the
beginning of a value in :func:`index.querytext.prefix_key` form.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit, urlunsplit

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import streaming_bulk

from normaliser.text import fold_for_search, has_han

from .backend import FACETS, FIELDS, Hit, SearchError, SearchQuery, SearchResults, year_range
from .querytext import Clause, as_isbn13, as_issn, isbn_forms, parse_text, prefix_key

log = logging.getLogger(__name__)

#: Bumped whenever the mappings or the document shape change: older indices are then rebuilt.
MAPPING_VERSION = 2
NESTED = "holdings"

Extract = Callable[[dict], "list[str] | str | int | None"]

#: Searchable text fields: ES field → the document values it holds (folded before indexing).
TEXT_FIELDS: dict[str, Extract] = {
    "title": lambda d: [d.get("title", ""), *d.get("title_alt", [])],
    "author": lambda d: d.get("authors") or [d.get("author", "")],
    "subject": lambda d: d.get("subjects", []),
    "publisher": lambda d: d.get("publisher", ""),
    "all": lambda d: d.get("all", ""),
    "pinyin": lambda d: d.get("pinyin", ""),
}
#: Text fields that also get the ``bigrams`` subfield (relevance for Chinese queries).
CJK_FIELDS = ("title", "author", "subject")
#: Fields a free-text word is looked up in, with their boosts (as the embedded backend).
TEXT_BOOSTS = (("title", 4.0), ("author", 2.0), ("subject", 1.5), ("publisher", 1.0), ("all", 1.0),
               ("pinyin", 0.5))
#: Keyword fields: ES field → the document values.
KEYWORDS: dict[str, Extract] = {
    "isbn": lambda d: [*d.get("isbns", []), *d.get("invalid_isbns", [])],
    "issn": lambda d: d.get("issns", []),
    "language": lambda d: d.get("languages", []),
    "format": lambda d: d.get("format") or "other",
    "subject_facet": lambda d: d.get("subject_headings", []),
    "title_sort": lambda d: d.get("title_sort", ""),
    "class_facet": lambda d: d.get("class_tops", []),
    # call numbers and class numbers in prefix_key form: the advanced search matches their beginnings
    "callnumber_key": lambda d: [prefix_key(v) for v in d.get("call_numbers", [])],
    "classification_key": lambda d: [prefix_key(c.get("value", "")) for c in d.get("classifications", [])],
    "libraries": lambda d: d.get("libraries", []),
    "regions": lambda d: d.get("regions", []),
}
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
#: Nested holding keys indexed as keywords (and, for the ones readers type, as text too).
HOLDING_KEYWORDS = ("source", "library", "region", "call_number", "location", "status")
HOLDING_TEXT = ("library", "call_number", "location")
SORTS = {"year": [{"year": {"order": "asc", "missing": "_last"}}, {"id": "asc"}],
         "-year": [{"year": {"order": "desc", "missing": "_last"}}, {"id": "asc"}],
         "title": [{"title_sort": {"order": "asc"}}, {"id": "asc"}]}   # ids break ties: stable pages
BULK_CHUNK = 500
BULK_RETRIES = 8


def _check_tables() -> None:
    missing = [f for f in FACETS if f not in FACET_FIELDS] + [f for f in FIELDS if f not in ADVANCED_FIELDS]
    if missing:
        raise RuntimeError(f"index.elastic has no mapping for {', '.join(missing)}: add it to FACET_FIELDS "
                           "or ADVANCED_FIELDS")


_check_tables()


def index_settings(shards: int = 1, replicas: int = 0) -> dict:
    return {
        "number_of_shards": shards,
        "number_of_replicas": replicas,
        "refresh_interval": "-1",         # writes become visible at commit (an explicit refresh)
        "max_result_window": 10_000,
        "analysis": {
            "filter": {
                "unioncat_bigrams": {"type": "shingle", "min_shingle_size": 2, "max_shingle_size": 2,
                                     "output_unigrams": False, "token_separator": ""},
            },
            "analyzer": {
                "unioncat_text": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
                "unioncat_bigrams": {"type": "custom", "tokenizer": "standard",
                                     "filter": ["lowercase", "unioncat_bigrams"]},
            },
        },
    }


def mappings() -> dict:
    """The mappings, derived from the field tables above."""
    props: dict[str, dict] = {"id": {"type": "keyword"},
                              "year": {"type": "integer"},
                              "library_count": {"type": "integer"},
                              # the document exactly as given, returned by get() and in hits
                              "doc": {"type": "object", "enabled": False}}
    for name in TEXT_FIELDS:
        props[name] = {"type": "text", "analyzer": "unioncat_text"}
        if name in CJK_FIELDS:
            props[name]["fields"] = {"bigrams": {"type": "text", "analyzer": "unioncat_bigrams"}}
    faceted = {FACET_AGG_FIELDS.get(f) or FACET_FIELDS[f] for f in FACETS}
    for name in KEYWORDS:
        # facet fields build their global ordinals at refresh, not in the first reader's query
        props[name] = {"type": "keyword", "eager_global_ordinals": True} if name in faceted else {"type": "keyword"}
    holding = {key: {"type": "keyword"} for key in HOLDING_KEYWORDS}
    for key in HOLDING_TEXT:
        holding[key]["fields"] = {"text": {"type": "text", "analyzer": "unioncat_text"}}
    props[NESTED] = {"type": "nested", "properties": holding}
    return {"dynamic": "strict", "_meta": {"unioncat_mapping": MAPPING_VERSION}, "properties": props}


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


def to_es(doc: dict) -> dict:
    """The indexed form of a :func:`index.documents.to_document` dict (which rides along unchanged)."""
    out: dict = {"id": doc["id"], "doc": doc, "library_count": int(doc.get("library_count", 0))}
    if doc.get("year") is not None:
        out["year"] = int(doc["year"])
    for name, extract in TEXT_FIELDS.items():
        value = extract(doc)
        out[name] = [fold(v) for v in value if v] if isinstance(value, list) else fold(value or "")
    for name, extract in KEYWORDS.items():
        value = extract(doc)
        out[name] = list(dict.fromkeys(v for v in value if v)) if isinstance(value, list) else value
    out[NESTED] = [{key: h.get(key, "") for key in HOLDING_KEYWORDS} for h in doc.get("holdings", [])]
    return out


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``https://user:pw@host:9200`` → (``https://host:9200``, (user, pw)); other URLs unchanged."""
    parts = urlsplit(url)
    if not parts.username:
        return url, None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), (
        unquote(parts.username), unquote(parts.password or ""))


class ElasticsearchBackend:
    """:class:`~index.backend.SearchBackend` on an Elasticsearch 9 cluster, behind the alias ``index``."""

    def __init__(self, url: str, index: str = "unioncat", *, shards: int = 1, replicas: int = 0,
                 request_timeout: float = 30.0, client: Elasticsearch | None = None,
                 drop_delay: float = 1.0):
        self.url, auth = split_credentials(url)   # the password never reaches messages or logs
        self.alias = index
        self.shards = shards
        self.replicas = replicas
        self.drop_delay = drop_delay
        self._own_client = client is None
        self.client = client or Elasticsearch(self.url, basic_auth=auth, request_timeout=request_timeout,
                                              max_retries=2, retry_on_timeout=True)
        self._lock = threading.RLock()
        self._pending: str | None = None   # a rebuilt index not yet behind the alias
        self._dirty = False

    # -- writing -------------------------------------------------------------
    def add(self, docs: Iterable[dict]) -> None:
        """Index documents, replacing any with the same id (visible at :meth:`commit`)."""
        with self._lock:
            target = self._write_target()
            actions = ({"_op_type": "index", "_index": target, "_id": d["id"], "_source": to_es(d)} for d in docs)
            self._bulk(actions)

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            target = self._write_target()
            self._bulk({"_op_type": "delete", "_index": target, "_id": i} for i in ids)

    def clear(self) -> None:
        """Start a new, empty versioned index; it replaces the live one at :meth:`commit`."""
        with self._lock:
            self._drop_orphans()
            self._pending = self._create_index()

    def commit(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._call(lambda: self.client.indices.refresh(index=self._pending))
                self._swap(self._pending)
                self._pending = None
            elif self._dirty:
                self._call(lambda: self.client.indices.refresh(index=self.alias))
            self._dirty = False

    def close(self) -> None:
        """Forget uncommitted work: an unfinished rebuild index is deleted, the live one is untouched."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                try:
                    self.client.indices.delete(index=pending, ignore_unavailable=True)
                except (ApiError, TransportError) as exc:
                    log.warning("could not drop the unfinished index %s: %s", pending, exc)
            if self._own_client:
                self.client.close()

    def __enter__(self) -> "ElasticsearchBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def needs_rebuild(self) -> bool:
        """True when the live index was built with other mappings than this code's."""
        live = self._live_indices()
        if not live:
            return False
        found = self._call(lambda: self.client.indices.get_mapping(index=live[0]))
        meta = next(iter(found.body.values()))["mappings"].get("_meta", {})
        return meta.get("unioncat_mapping") != MAPPING_VERSION

    # -- reading -------------------------------------------------------------
    def search(self, q: SearchQuery) -> SearchResults:
        q.validate()
        started = time.perf_counter()
        names = q.facets if q.facets is not None else FACETS
        body: dict = {"query": self._query(q), "from_": q.offset, "size": q.limit, "track_total_hits": True,
                      "source": ["doc"], "aggs": {name: self._facet_agg(name, q.facet_size) for name in names}}
        if q.sort in SORTS:
            body["sort"] = SORTS[q.sort]
        resp = self._call(lambda: self.client.search(index=self.alias, ignore_unavailable=True,
                                                     allow_no_indices=True, **body)).body
        shards = resp.get("_shards", {})
        if shards.get("failed"):
            raise SearchError(f"Elasticsearch at {self.url}: {shards['failed']} shard(s) failed: "
                              f"{shards.get('failures', [])[:1]}")
        hits = [Hit(id=h["_id"], score=float(h.get("_score") or 0.0), doc=h["_source"]["doc"])
                for h in resp["hits"]["hits"]]
        aggs = resp.get("aggregations", {})
        facets = {name: _buckets(aggs.get(name, {})) for name in names}
        took = (time.perf_counter() - started) * 1000
        return SearchResults(total=resp["hits"]["total"]["value"], hits=hits, facets=facets, took_ms=round(took, 2))

    def get(self, id: str) -> dict | None:
        try:
            resp = self._call(lambda: self.client.get(index=self.alias, id=id, realtime=False, source=["doc"]))
        except _NotFound:
            return None
        return resp["_source"]["doc"] if resp.get("found") else None

    def count(self) -> int:
        try:
            return int(self._call(lambda: self.client.count(index=self.alias))["count"])
        except _NotFound:
            return 0

    def stats(self) -> dict:
        live = self._live_indices()
        size = 0
        if live:
            st = self._call(lambda: self.client.indices.stats(index=live[0], metric="store"))
            size = st["_all"]["primaries"]["store"]["size_in_bytes"]
        return {"backend": "elasticsearch", "url": self.url, "alias": self.alias, "index": live[0] if live else None,
                "documents": self.count(), "size_bytes": size}

    # -- internals: writing --------------------------------------------------
    def _write_target(self) -> str:
        if self._pending is not None:
            return self._pending
        if self._live_indices():
            return self.alias
        # the first build: a new index that the first commit puts behind the alias
        self._drop_orphans()
        self._pending = self._create_index()
        return self._pending

    def _bulk(self, actions: Iterator[dict]) -> None:
        errors = []
        try:
            for ok, item in streaming_bulk(self.client, actions, chunk_size=BULK_CHUNK, max_retries=BULK_RETRIES,
                                           initial_backoff=0.5, max_backoff=30, raise_on_error=False,
                                           raise_on_exception=True):
                self._dirty = True
                if not ok:
                    op, result = next(iter(item.items()))
                    if op == "delete" and result.get("status") == 404:
                        continue  # deleting what is not there is fine
                    errors.append(result)
        except (ApiError, TransportError) as exc:
            raise SearchError(f"Elasticsearch at {self.url}: bulk indexing failed: {exc}") from exc
        if errors:
            first = errors[0]
            raise SearchError(f"Elasticsearch at {self.url}: {len(errors)} document(s) refused, the first "
                              f"({first.get('_id')}): {first.get('error')}")

    def _create_index(self) -> str:
        self._put_template()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S%f")
        name = f"{self.alias}-v{stamp}"
        self._call(lambda: self.client.indices.create(index=name, wait_for_active_shards="1"))
        log.info("created index %s for alias %s", name, self.alias)
        return name

    def _put_template(self) -> None:
        """The index template every versioned index of this alias is created from."""
        self._call(lambda: self.client.indices.put_index_template(
            name=self.alias, index_patterns=[f"{self.alias}-v*"], priority=100,
            template={"settings": index_settings(self.shards, self.replicas), "mappings": mappings()},
            meta={"unioncat_mapping": MAPPING_VERSION, "description": "unioncat search index"}))

    def _swap(self, new: str) -> None:
        """Point the alias at ``new`` in one atomic call, then drop the indices it pointed at."""
        old = self._live_indices()
        actions = [{"remove": {"index": o, "alias": self.alias}} for o in old]
        actions.append({"add": {"index": new, "alias": self.alias, "is_write_index": True}})
        self._call(lambda: self.client.indices.update_aliases(actions=actions))
        log.info("alias %s now points at %s (was %s)", self.alias, new, ", ".join(old) or "nothing")
        if old:
            time.sleep(self.drop_delay)  # let searches already routed to the old index finish
            self._call(lambda: self.client.indices.delete(index=",".join(old), ignore_unavailable=True))

    def _live_indices(self) -> list[str]:
        try:
            found = self._call(lambda: self.client.indices.get_alias(name=self.alias))
        except _NotFound:
            return []
        return sorted(found.body)

    def _drop_orphans(self) -> None:
        """Delete versioned indices a failed rebuild left behind (never the live one)."""
        live = set(self._live_indices())
        try:
            found = self._call(lambda: self.client.indices.get(index=f"{self.alias}-v*", expand_wildcards="open,closed",
                                                               allow_no_indices=True))
        except _NotFound:
            return
        orphans = [name for name in found.body if name not in live and name != self._pending]
        if orphans:
            log.warning("dropping unfinished rebuild indices %s", ", ".join(orphans))
            self._call(lambda: self.client.indices.delete(index=",".join(orphans), ignore_unavailable=True))

    def _call(self, call):
        try:
            return call()
        except NotFoundError as exc:
            raise _NotFound(str(exc)) from exc
        except (ApiError, TransportError) as exc:
            raise SearchError(f"Elasticsearch at {self.url}: {exc}") from exc

    # -- internals: queries --------------------------------------------------
    def _query(self, q: SearchQuery) -> dict:
        must: list[dict] = []
        must_not: list[dict] = []
        should: list[dict] = []
        text = fold_for_search(q.text.strip())   # full-width digits and hyphens of a pasted ISBN too
        isbn = as_isbn13(text)
        if isbn:
            must.append({"terms": {"isbn": isbn_forms(isbn)}})
        else:
            self._clauses(parse_text(text), TEXT_BOOSTS, must, must_not, should)
            issn = as_issn(text)
            if issn and must:  # an ISSN, or the same characters as words
                must = [{"bool": {"should": [{"term": {"issn": issn}}, {"bool": {"must": must}}],
                                  "minimum_should_match": 1}}]
        for name, value in q.fields.items():
            if value and value.strip():
                self._field_query(name, value, must, must_not, should)
        filters = [self._filter(name, value) for name, values in q.filters.items() for value in values]
        for name, values in q.any_of.items():   # a scope: at least one of the values
            options = [self._filter(name, v) for v in values if v]
            filters.append({"bool": {"should": options, "minimum_should_match": 1}} if options else {"match_none": {}})
        query: dict = {"bool": {"must": must or [{"match_all": {}}], "filter": filters, "must_not": must_not}}
        if should:
            query["bool"]["should"] = should
        return query

    def _field_query(self, name: str, value: str, must: list, must_not: list, should: list) -> None:
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
            self._clauses(parse_text(value), ((field, 1.0),), inner_must, inner_not, [])
            must.extend({"nested": {"path": NESTED, "query": q}} for q in inner_must)
            must_not.extend({"nested": {"path": NESTED, "query": q}} for q in inner_not)
        else:
            self._clauses(parse_text(value), ((field, 1.0),), must, must_not, should)

    def _clauses(self, clauses: list[Clause], fields, must: list, must_not: list, should: list) -> None:
        for clause in clauses:
            if not clause.phrase and as_isbn13(clause.text):
                query = {"terms": {"isbn": isbn_forms(as_isbn13(clause.text))}}
            else:
                words = fold(clause.text)
                # a word that analyses to no token (punctuation) is no condition, as in the embedded backend
                query = {"multi_match": {"query": words, "type": "phrase", "tie_breaker": 0.1,
                                         "fields": [f"{f}^{b:g}" for f, b in fields],
                                         "zero_terms_query": "none" if clause.negated else "all"}}
                if not clause.negated and has_han(words):
                    cjk = [f"{f}.bigrams^{b:g}" for f, b in fields if f in CJK_FIELDS]
                    if cjk:
                        should.append({"multi_match": {"query": words, "fields": cjk}})
            (must_not if clause.negated else must).append(query)

    def _filter(self, name: str, value: str) -> dict:
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

    def _facet_agg(self, name: str, size: int) -> dict:
        field = FACET_AGG_FIELDS.get(name) or FACET_FIELDS[name]
        if field.startswith(NESTED + "."):
            # count records, not copies: a record held twice in a region counts once
            return {"nested": {"path": NESTED},
                    "aggs": {"values": {"terms": {"field": field, "size": size,
                                                  "order": [{"records": "desc"}, {"_key": "asc"}]},
                                        "aggs": {"records": {"reverse_nested": {}}}}}}
        return {"terms": {"field": field, "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}


class _NotFound(SearchError):
    """The alias or document does not exist (yet): an empty catalogue, not an error."""


def _buckets(agg: dict) -> list[tuple[str, int]]:
    if "values" in agg:
        return [(str(b["key"]), int(b["records"]["doc_count"])) for b in agg["values"]["buckets"]]
    return [(str(b.get("key_as_string", b["key"])), int(b["doc_count"])) for b in agg.get("buckets", [])]
