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

Adding a facet or an advanced-search field: one line in
:data:`index.elastic_query.FACET_FIELDS` (and, for a facet not taken from the
holdings, one in :data:`KEYWORDS`) or in :data:`index.elastic_query.ADVANCED_FIELDS`;
the mappings here and the queries there are derived from these tables.  Bump
:data:`MAPPING_VERSION` so existing indices are rebuilt.  As in the embedded backend, the ``classification`` facet counts the documents'
``class_tops`` and the ``callnumber``/``classification`` fields match the
beginning of a value in :func:`index.querytext.prefix_key` form.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit, urlunsplit

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import streaming_bulk

from storage.jsoncodec import dumps

from . import browse, forgiving, suggest, works
from .backend import FACETS, Hit, SearchError, SearchQuery, SearchResults
from .elastic_query import (
    CJK_FIELDS, FACET_AGG_FIELDS, FACET_FIELDS, NESTED, buckets, editions_body, fold, search_bodies,
)
from .pinyin_input import index_text as pinyin_index_text
from .querytext import prefix_key, title_keys
from .variants import document_stems

log = logging.getLogger(__name__)

#: Bumped whenever the mappings or the document shape change: older indices are then rebuilt.
MAPPING_VERSION = 7

Extract = Callable[[dict], "list[str] | str | int | None"]

#: Searchable text fields: ES field → the document values it holds (folded before indexing).
TEXT_FIELDS: dict[str, Extract] = {
    "title": lambda d: [d.get("title", ""), *d.get("title_alt", [])],
    "author": lambda d: d.get("authors") or [d.get("author", "")],
    "subject": lambda d: d.get("subjects", []),
    "publisher": lambda d: d.get("publisher", ""),
    "all": lambda d: d.get("all", ""),
    "pinyin": pinyin_index_text,   # syllables, with a romanised record's own title (index.pinyin_input)
    # Snowball stems, American spelling (index.variants): made in Python, as for the embedded backend
    "stem": lambda d: document_stems(d.get("all", ""), d.get("languages", [])),
}
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
    "title_key": title_keys,     # exact-title ranking (index.backend.EXACT_TITLE_BOOST)
    works.FIELD: works.work_of,  # editions of one work collapsed into one hit (index.works)
    # autocomplete keys (index.suggest)
    **{name: (lambda field: lambda d: suggest.keys(d)[field])(name) for name in suggest.KEY_FIELDS.values()},
    # browse lists (index.browse): walked in value order by a composite aggregation
    **{name: (lambda field: lambda d: browse.keys(d)[field])(name) for name in browse.FIELDS.values()},
}
#: Nested holding keys indexed as keywords (and, for the ones readers type, as text too).
HOLDING_KEYWORDS = ("source", "library", "region", "call_number", "location", "status")
HOLDING_TEXT = ("library", "call_number", "location")
BULK_CHUNK = 500
BULK_RETRIES = 8


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
    def add(self, docs: Iterable[dict], fresh: bool = False) -> None:
        """Index documents, replacing any with the same id (visible at :meth:`commit`); an index op replaces
        by ``_id`` at no extra cost, so ``fresh`` changes nothing here."""
        with self._lock:
            target = self._write_target()
            # ``_source`` as JSON text the store's codec (orjson) wrote: the client passes text through as it is,
            # where its own ``json.dumps`` of every document cost more than building it
            actions = ({"_op_type": "index", "_index": target, "_id": d["id"], "_source": dumps(to_es(d))}
                       for d in docs)
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

    def rollback(self) -> None:
        """Forget an unfinished rebuild (its index is deleted).  Writes to the live index are not undone: they
        replace documents by id, so running the stage again from its checkpoint writes each entry once."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                try:
                    self.client.indices.delete(index=pending, ignore_unavailable=True)
                except (ApiError, TransportError) as exc:
                    log.warning("could not drop the unfinished index %s: %s", pending, exc)

    def close(self) -> None:
        """Forget uncommitted work (:meth:`rollback`) and release the client if it is ours."""
        with self._lock:
            self.rollback()
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
        return forgiving.search(self._search_once, q.validate())

    def _search_once(self, q: SearchQuery) -> SearchResults:
        q.validate()
        started = time.perf_counter()
        names = q.facets if q.facets is not None else FACETS
        answers = self._msearch(search_bodies(q, names))
        counted, page = answers[0], answers[-1]
        found = page["hits"]["hits"]
        editions = self._editions(q, [h["fields"][works.FIELD][0] for h in found]) if q.group_works and found else {}
        hits = [Hit(id=h["_id"], score=float(h.get("_score") or 0.0), doc=h["_source"]["doc"],
                    editions=[e["_source"]["doc"] for e in editions.get(h["fields"][works.FIELD][0], [])
                              if e["_id"] != h["_id"]][:works.EDITIONS] if q.group_works else [])
                for h in found]
        aggs = counted.get("aggregations", {})
        facets = {name: buckets(aggs.get(name, {})) for name in names}
        took = (time.perf_counter() - started) * 1000
        total = records = counted["hits"]["total"]["value"]
        if q.group_works:
            total = min(int(aggs.get("_works", {}).get("value", 0)), records)
        return SearchResults(total=total, hits=hits, facets=facets, took_ms=round(took, 2),
                             records=records if q.group_works else None,
                             total_is_estimate=q.group_works and records > works.EXACT_UP_TO)

    def _editions(self, q: SearchQuery, keys: list[str]) -> dict[str, list[dict]]:
        """Work key → its matching records in the query's order (:func:`index.elastic_query.editions_body`)."""
        resp, = self._msearch([editions_body(q, list(dict.fromkeys(keys)))])
        return {b["key"]: b["editions"]["hits"]["hits"]
                for b in resp.get("aggregations", {}).get("works", {}).get("buckets", [])}

    def _msearch(self, bodies: list[dict]) -> list[dict]:
        """Several searches of the alias in one round trip (the node runs them side by side)."""
        header = {"index": self.alias, "ignore_unavailable": True, "allow_no_indices": True}
        resp = self._call(lambda: self.client.msearch(searches=[part for b in bodies for part in (header, b)])).body
        for answer in resp["responses"]:
            failed = answer.get("error") or answer.get("_shards", {}).get("failed")
            if failed:
                raise SearchError(f"Elasticsearch at {self.url}: the search failed: "
                                  f"{answer.get('error') or answer['_shards'].get('failures', [])[:1]}")
        return resp["responses"]

    def suggest(self, text: str, limit: int = suggest.DEFAULT_LIMIT) -> list[dict]:
        prefix = suggest.prefix_of(text)
        if not prefix:
            return []
        query = {"bool": {"should": [{"prefix": {f: prefix}} for f in suggest.KEY_FIELDS.values()],
                          "minimum_should_match": 1}}
        resp = self._call(lambda: self.client.search(
            index=self.alias, ignore_unavailable=True, allow_no_indices=True, query=query, size=suggest.CANDIDATES,
            sort=[{"library_count": "desc"}, {"id": "asc"}], source=["doc"], track_total_hits=False)).body
        return suggest.pick([h["_source"]["doc"] for h in resp["hits"]["hits"]], prefix, limit)

    def browse(self, kind: str, start: str = "", **options) -> browse.BrowsePage:
        return browse.page(self._walk, self.get, kind, start, **options)

    def _walk(self, field: str, after: str | None, size: int, descending: bool) -> list[tuple[str, int]]:
        source = {"terms": {"field": field, "order": "desc" if descending else "asc"}}
        agg = {"composite": {"size": size, "sources": [{"k": source}], **({"after": {"k": after}} if after else {})}}
        resp = self._call(lambda: self.client.search(index=self.alias, ignore_unavailable=True, allow_no_indices=True,
                                                     size=0, aggs={"b": agg}, track_total_hits=False)).body
        return [(b["key"]["k"], int(b["doc_count"])) for b in resp.get("aggregations", {}).get("b", {}).get("buckets", [])]

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

class _NotFound(SearchError):
    """The alias or document does not exist (yet): an empty catalogue, not an error."""
