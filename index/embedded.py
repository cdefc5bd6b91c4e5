"""The embedded search backend: a tantivy index in a directory, no server.

One process writes (the pipeline; tantivy's own lock file enforces it), any number read (the web app).  A
reader notices a commit from another process by the change of the index's ``meta.json`` and reloads before
the next search.

Text is analysed by one analyzer registered under :data:`~index.embedded_doc.TOKENIZER`: every Han character,
kana and other CJK ideograph is a token of its own, runs of other letters and digits are words; all lowercased
and accent-folded (the ``stem`` field's ready-made stems are split at their spaces into the same tokens).  A
query word that analyses to several tokens (``中国``, ``Müller-Lüdenscheid``) becomes a phrase, so a
two-character Chinese word finds exactly the titles that contain it.  Custom analyzers are not stored in the
index, so every ``EmbeddedIndex`` registers them on open.

Text is first folded in Python, indexed and queried alike (:func:`normaliser.text.fold_for_search`: full-width
to half-width, traditional Han to simplified: 紅樓夢 finds 红楼梦, ＩＳＯ９００１ ISO9001).  A ``pinyin`` field
holds toneless syllables of Han titles and names (``hong lou meng``), searched with a low boost.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import tantivy
from tantivy import FieldType, Index, Order, Query, SchemaBuilder, Tokenizer

from .backend import (
    EXACT_TITLE_BOOST, FACETS, FUZZY_FIELDS, HOLDING_BOOSTS, PINYIN_BOOST, RECENT_BOOST, RECENT_YEARS, STEM_BOOST,
    TITLE_PREFIX_BOOST, TITLE_PREFIX_MAX, TITLE_PREFIX_MIN, Hit, SearchError, SearchQuery, SearchResults, year_range,
)
from normaliser.text import fold_for_search

from . import browse, embedded_answers, embedded_facets, embedded_works, forgiving, suggest, works
from .embedded_facets import FACET_FIELDS
from .pinyin_input import segmentations
from .querytext import Clause, as_isbn13, as_issn, isbn_forms, parse_text, prefix_key, regex_literal, title_key
from .embedded_doc import STEM_TOKENIZER, TOKENIZER, analyzer, to_tantivy
from .embedded_terms import TermWalk
from .variants import phrase_stems, query_stems, words

DEFAULT_HEAP = 128_000_000

#: Fields a free-text word is looked up in, with their boosts.
TEXT_FIELDS = (("title", 4.0), ("author", 2.0), ("subject", 1.5), ("publisher", 1.0), ("all", 1.0),
               ("pinyin", 0.5))
#: Advanced-search fields matched on a leading part of the value (``I247`` finds ``I247.5/123``).
PREFIX_FIELDS = ("callnumber", "classification")
SORT_FIELDS = {"year": ("year", Order.Asc), "-year": ("year", Order.Desc), "title": ("title_sort", Order.Asc)}
#: Keyword fields with a column (fast field): those counted as facets or sorted on.  The others (ids, ISBNs, ISSNs,
#: browse values) are only looked up through the term dictionary; their columns were ~6% of the writer's CPU.
FAST_KEYWORDS = frozenset({*FACET_FIELDS.values(), SORT_FIELDS["title"][0]})


def build_schema() -> tantivy.Schema:
    sb = SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    for name, _ in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name=TOKENIZER)
    sb.add_text_field("stem", tokenizer_name=STEM_TOKENIZER)
    sb.add_text_field("title_key", tokenizer_name="raw")
    for name in [*suggest.KEY_FIELDS.values(), suggest.START_FIELD]:
        sb.add_text_field(name, tokenizer_name="raw")
    for name in PREFIX_FIELDS:
        sb.add_text_field(name, tokenizer_name="raw")
    for name in ("isbn", "issn", "library", "region", "language", "format", "subject_facet", "class_facet",
                 "title_sort", *browse.FIELDS.values()):
        sb.add_text_field(name, tokenizer_name="raw", fast=name in FAST_KEYWORDS)
    sb.add_integer_field("year", indexed=True, fast=True)
    sb.add_integer_field("library_count", indexed=True, fast=True)
    sb.add_integer_field(works.HASH_FIELD, indexed=True, fast=True)
    sb.add_bytes_field("_source", stored=True)
    return sb.build()


class IndexSchemaError(SearchError):
    """The directory holds an index built with another schema: rebuild it."""


FACET_CACHE_SIZE, SUGGEST_CACHE_SIZE = 512, 4096
#: Indexing threads of the writer: one (tantivy's default: one per core).  A second won nothing on two shared cores
#: and splits the writer's heap into smaller, more numerous segments (BENCHMARKS.md ``stage14``).
WRITER_THREADS = 1


class EmbeddedIndex:
    """:class:`~index.backend.SearchBackend` on tantivy.  ``path=None`` keeps the index in memory."""

    def __init__(self, path: Path | str | None, heap_size: int = DEFAULT_HEAP):
        self.path = Path(path) if path is not None else None
        self.heap_size = heap_size
        self.schema = build_schema()
        self._analyzer = analyzer()
        self._lock = threading.RLock()
        self._writer: tantivy.IndexWriter | None = None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._index = Index(self.schema, str(self.path) if self.path else None, reuse=True)
        except ValueError as exc:
            raise IndexSchemaError(f"{self.path}: {exc}; this index was built by another version of "
                                   "unioncat: delete the directory and rebuild the index") from exc
        self._index.register_tokenizer(TOKENIZER, self._analyzer)
        self._index.register_tokenizer(STEM_TOKENIZER, analyzer(Tokenizer.whitespace()))
        self._meta_stamp = self._stamp()
        self._facet_cache: OrderedDict[tuple, tuple] = OrderedDict()  # per index generation, as the next two
        self._answers = embedded_answers.Answers()
        self._suggest_cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._generation = 0
        self._terms = TermWalk()
        self._dirty = False  # changes since the last commit

    # -- writing -------------------------------------------------------------
    def add(self, docs: Iterable[dict], fresh: bool = False) -> None:
        """Index :func:`index.documents.to_document`'s documents, replacing any with the same id unless ``fresh``."""
        with self._lock:
            writer = self._get_writer()
            for doc in docs:
                if not fresh:
                    writer.delete_documents_by_term("id", doc["id"])
                writer.add_document(to_tantivy(doc))

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            writer = self._get_writer()
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)

    def clear(self) -> None:
        """Delete every document (visible at the next commit, so a rebuild swaps in one go)."""
        with self._lock:
            self._get_writer().delete_all_documents()

    def commit(self) -> None:
        with self._lock:
            if self._writer is None:
                return
            self._writer.commit()
            self._dirty = False
            self._reload()

    def close(self) -> None:
        """Release the writer and its lock file, dropping the changes since the last commit (:meth:`rollback`) and
        the merges tantivy began after it: a clean writer only waits for them (250k: 2 segments at the end, not 9)."""
        with self._lock:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                if self._dirty:
                    writer.rollback()
                writer.wait_merging_threads()

    rollback = close

    def __enter__(self) -> "EmbeddedIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -------------------------------------------------------------
    def search(self, q: SearchQuery) -> SearchResults:
        """:mod:`index.forgiving`'s search; an answer given since the last reload is given again (a copy)."""
        started, _ = time.perf_counter(), self._searcher()  # a commit seen here drops the answers
        if (known := self._answers.get(key := embedded_answers.key(q.validate(), self._generation))) is not None:
            known.took_ms = round((time.perf_counter() - started) * 1000, 2)
            return known
        return self._answers.put(key, forgiving.search(self._search_once, q))

    def _search_once(self, q: SearchQuery) -> SearchResults:
        q.validate()
        started = time.perf_counter()
        must, must_not = self._conditions(q)
        matching = _all_of(must, must_not)
        # boosts order hits and change no count: the facet pass counts without them (a third of its time); each
        # is nested one level up, ((m + b1) + b2) + …: flat, m + (b1 + b2 + …), tantivy unions them over the whole
        # index, not only at the matches (−4 ms CPU a relevance query at 1M; BENCHMARKS.md ``search1m``)
        query = matching
        for boost in self._ranking(q) if q.text.strip() and q.sort == "relevance" and q.limit else []:
            query = Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Should, boost)])
        searcher = self._searcher()
        sort = SORT_FIELDS.get(q.sort)

        def ranked(which: Query, limit: int, offset: int = 0) -> tuple[list, int]:
            result = _guard(lambda: searcher.search(which, max(limit, 1), count=True, offset=offset,  # 0 panics
                                                    order_by_field=sort[0] if sort else None,
                                                    order=sort[1] if sort else Order.Desc))
            return [(float(key) if sort is None else 0.0, address) for key, address in result.hits], result.count

        records, estimate = None, False
        names = tuple(q.facets if q.facets is not None else FACETS)
        counted = self._facets(searcher, matching, q, names)  # on a worker thread while the page is fetched
        if q.group_works:
            hits, total, records, estimate = _guard(lambda: embedded_works.page(searcher, self.schema, query, q, ranked,
                                                                               lambda: counted()[1], matching))
        else:
            found, total = ranked(query, q.limit, q.offset)
            hits = [Hit(id=(doc := embedded_works.source(searcher.doc(address)))["id"], score=score, doc=doc)
                    for score, address in (found if q.limit else [])]
        # nothing found, nothing to count: every facet of no record is empty (the typo pass's first search and
        # its corrected one often find nothing; their facet pass cost 1–8 ms at 1M)
        facets = counted()[0] if (records if q.group_works else total) else {name: [] for name in names}
        took = (time.perf_counter() - started) * 1000
        return SearchResults(total=total, hits=hits, facets=facets, took_ms=round(took, 2), records=records,
                             total_is_estimate=estimate)

    def suggest(self, text: str, limit: int = suggest.DEFAULT_LIMIT) -> list[dict]:
        prefix = suggest.prefix_of(text)
        if not prefix:
            return []
        searcher = self._searcher()
        key = (prefix, limit, self._generation)
        cached = self._recall(self._suggest_cache, key)  # short prefixes recur from reader to reader
        if cached is not None:
            return [dict(s) for s in cached]
        if len(prefix) <= suggest.START_MAX:  # the first keystrokes: one term (index.suggest.starts)
            query = Query.term_query(self.schema, suggest.START_FIELD, prefix)
        else:
            pattern = regex_literal(prefix) + ".*"
            query = Query.boolean_query([(tantivy.Occur.Should, Query.regex_query(self.schema, f, pattern))
                                         for f in suggest.KEY_FIELDS.values()])
        result = _guard(lambda: searcher.search(query, suggest.CANDIDATES, order_by_field="library_count",
                                                order=Order.Desc))
        found = suggest.pick([embedded_works.source(searcher.doc(address)) for _, address in result.hits],
                             prefix, limit)
        self._remember(self._suggest_cache, key, found, SUGGEST_CACHE_SIZE)
        return [dict(s) for s in found]

    def browse(self, kind: str, start: str = "", **options) -> browse.BrowsePage:
        return browse.page(self._walk, self.get, kind, start, **options)

    def _walk(self, field: str, after: str | None, size: int, descending: bool) -> list[tuple[str, int]]:
        """Through the term dictionary (:mod:`index.embedded_terms`): a letter jump reads no document."""
        searcher = self._searcher()
        return _guard(lambda: self._terms.walk(searcher, self._generation, field, after, size, descending))

    def get(self, id: str) -> dict | None:
        searcher = self._searcher()
        result = _guard(lambda: searcher.search(Query.term_query(self.schema, "id", id), 1))
        return embedded_works.source(searcher.doc(result.hits[0][1])) if result.hits else None

    def count(self) -> int:
        return self._searcher().num_docs

    def stats(self) -> dict:
        searcher = self._searcher()
        size = 0
        if self.path is not None:
            size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        return {"backend": "embedded", "path": str(self.path) if self.path else None,
                "documents": searcher.num_docs, "segments": searcher.num_segments, "size_bytes": size}

    # -- internals -----------------------------------------------------------
    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(self.heap_size, WRITER_THREADS)
        self._dirty = True
        return self._writer

    def _stamp(self) -> tuple | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path / "meta.json")
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _reload(self) -> None:
        self._index.reload()
        self._meta_stamp = self._stamp()
        self._generation += 1
        self._answers.clear()

    def _searcher(self) -> tantivy.Searcher:
        """A searcher on the latest commit, from this or any other process."""
        if self.path is not None and self._stamp() != self._meta_stamp:
            with self._lock:
                self._reload()
        return self._index.searcher()

    def _conditions(self, q: SearchQuery) -> tuple[list[Query], list[Query]]:
        """The queries a record of ``q`` must match and must not (the ranking boosts aside: :meth:`_ranking`)."""
        must: list[Query] = []
        must_not: list[Query] = []
        should_isbn = None
        text = fold_for_search(q.text.strip())      # full-width digits and hyphens of a pasted ISBN too
        isbn = as_isbn13(text)
        if isbn:
            must.append(self._isbn_query(isbn))
        else:
            issn = as_issn(text)
            if issn:  # an ISSN, or the same characters as words
                should_isbn = Query.term_query(self.schema, "issn", issn)
            self._clauses(parse_text(text), TEXT_FIELDS, must, must_not, forgiving.distances(q))
            if should_isbn is not None and must:
                must = [Query.boolean_query([(tantivy.Occur.Should, should_isbn),
                                             (tantivy.Occur.Should, _all_of(must))])]
        for name, value in q.fields.items():
            if not value or not value.strip():
                continue
            if name == "isbn":
                isbn = as_isbn13(value)
                compact = value.replace("-", "").replace(" ", "").upper()
                must.append(self._isbn_query(isbn) if isbn else Query.term_query(self.schema, "isbn", compact))
            elif name == "issn":
                # the ISSN field says what it is, so eight bare characters are an ISSN too
                compact = re.sub(r"[\s-]", "", fold_for_search(value)).upper()
                issn = as_issn(value) or (f"{compact[:4]}-{compact[4:]}" if len(compact) == 8 else compact)
                must.append(Query.term_query(self.schema, "issn", issn))
            elif name in PREFIX_FIELDS:
                must.append(self._prefix(name, value))
            else:
                self._clauses(parse_text(value), ((name, 1.0),), must, must_not)
        for name, values in q.filters.items():
            for value in values:
                must.append(self._filter(name, value))
        for name, values in q.any_of.items():
            options = [(tantivy.Occur.Should, self._filter(name, v)) for v in values if v]
            must.append(Query.boolean_query(options) if options else Query.empty_query())
        if not must:
            must.append(Query.all_query())
        return must, must_not

    def _ranking(self, q: SearchQuery) -> list[Query]:
        """The gentle boosts of :mod:`index.backend`: exact title, holdings count, recency."""
        boosts = [Query.const_score_query(Query.range_query(self.schema, "library_count", FieldType.Integer,
                                                            least, None), score)
                  for least, score in HOLDING_BOOSTS]
        boosts.append(Query.const_score_query(Query.range_query(
            self.schema, "year", FieldType.Integer, time.gmtime().tm_year - RECENT_YEARS, None), RECENT_BOOST))
        key = title_key(q.text)
        if key:
            boosts.append(Query.const_score_query(Query.term_query(self.schema, "title_key", key),
                                                  EXACT_TITLE_BOOST))
        if len(key) >= TITLE_PREFIX_MIN:
            boosts.append(Query.const_score_query(Query.regex_query(
                self.schema, suggest.KEY_FIELDS["title"], regex_literal(key[:TITLE_PREFIX_MAX]) + ".*"),
                TITLE_PREFIX_BOOST))
        return boosts

    def _prefix(self, name: str, value: str) -> Query:
        """Values starting with ``value`` (case, spaces and full-width forms ignored)."""
        key = prefix_key(value)
        if not key:
            return Query.all_query()
        return Query.regex_query(self.schema, name, regex_literal(key) + ".*")

    def _isbn_query(self, isbn13: str) -> Query:
        return Query.term_set_query(self.schema, "isbn", isbn_forms(isbn13))

    def _clauses(self, clauses: list[Clause], fields, must: list[Query], must_not: list[Query],
                 fuzzy: Mapping[str, int] | None = None) -> None:
        for clause in clauses:
            query = None
            if not clause.phrase and as_isbn13(clause.text):
                query = self._isbn_query(as_isbn13(clause.text))
            else:
                tokens = self._analyzer.analyze(fold_for_search(clause.text))
                if tokens:
                    per_field = [self._match(name, tokens, boost) for name, boost in fields]
                    if fields is TEXT_FIELDS and not clause.phrase and not clause.negated:
                        per_field += self._forgiving(clause.text, fuzzy or {})
                    query = per_field[0] if len(per_field) == 1 else Query.disjunction_max_query(per_field, 0.1)
            if query is not None:
                (must_not if clause.negated else must).append(query)

    def _forgiving(self, word: str, fuzzy: Mapping[str, int]) -> list[Query]:
        """A typed word's other forms: its stems, its pinyin syllables, and (in the typo pass) near spellings."""
        out = []
        stems = query_stems(word)
        if stems:
            out.append(Query.boost_query(Query.term_set_query(self.schema, "stem", stems), STEM_BOOST))
        elif len(several := phrase_stems(word)) > 1:
            out.append(Query.boost_query(Query.phrase_query(self.schema, "stem", several), STEM_BOOST))
        for syllables in segmentations(word):
            out.append(Query.boost_query(Query.phrase_query(self.schema, "pinyin", syllables), PINYIN_BOOST))
        token = words(word)
        if len(token) == 1 and token[0] in fuzzy:
            distance = fuzzy[token[0]]
            out += [Query.boost_query(Query.fuzzy_term_query(self.schema, name, token[0], distance, True), boost)
                    for name, boost in FUZZY_FIELDS]
        return out

    def _match(self, field: str, tokens: list[str], boost: float) -> Query:
        if len(tokens) == 1:
            query = Query.term_query(self.schema, field, tokens[0])
        else:
            query = Query.phrase_query(self.schema, field, tokens)
        return query if boost == 1.0 else Query.boost_query(query, boost)

    def _filter(self, name: str, value: str) -> Query:
        if name == "year":
            bounds = year_range(value)
            if bounds is None:
                return Query.empty_query()
            return Query.range_query(self.schema, "year", FieldType.Integer, bounds[0], bounds[1])
        return Query.term_query(self.schema, FACET_FIELDS[name], value)

    def _facets(self, searcher: tantivy.Searcher, query: Query, q: SearchQuery,
                names: tuple[str, ...]) -> Callable[[], embedded_facets.Counts]:
        """The counts of the facets ``names``, and for a grouped search the HyperLogLog count of works and the
        count of records from the same pass (``None`` when no facet is asked: :mod:`index.embedded_works` then
        counts on its own), as a call that waits for them: counted on :func:`index.embedded_facets.pending`'s
        worker threads, or when first wanted."""
        if not names:
            return lambda: ({}, None)
        key = (*embedded_facets.asked(q, names), self._generation)
        cached = self._recall(self._facet_cache, key)
        if cached is not None:
            return lambda: cached

        return embedded_facets.pending(lambda: _guard(lambda: embedded_facets.count(searcher, query, q, names)),
                                       lambda counted: self._remember(self._facet_cache, key, counted, FACET_CACHE_SIZE))

    def _recall(self, cache: OrderedDict, key: tuple):
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
            return cache.get(key)

    def _remember(self, cache: OrderedDict, key: tuple, value, size: int) -> None:
        """Keep ``value`` in an LRU ``cache`` of ``size`` entries (keys carry the index generation)."""
        with self._lock:
            cache[key] = value
            while len(cache) > size:
                cache.popitem(last=False)


def _all_of(must: list[Query], must_not: list[Query] = ()) -> Query:
    return must[0] if len(must) == 1 and not must_not else Query.boolean_query(
        [(tantivy.Occur.Must, m) for m in must] + [(tantivy.Occur.MustNot, m) for m in must_not])


def _guard(call):
    """Run an engine call; a Rust panic (a BaseException) becomes a :class:`SearchError`."""
    try:
        return call()
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception as exc:
        raise SearchError(f"search engine error: {exc}") from exc
    except BaseException as exc:  # pyo3 PanicException
        raise SearchError(f"search engine panic: {exc}") from exc
