"""A search document (:func:`index.documents.to_document`) as the embedded backend indexes it, and the
analyzers its text fields go through (registered by every :class:`index.embedded.EmbeddedIndex` on open).

Text is folded by :func:`normaliser.text.fold_for_search` before tantivy's analyzer sees it; the
``stem`` text (:mod:`index.variants`), the exact-title keys and the autocomplete keys
(:mod:`index.suggest`) are made here in Python, exactly as :mod:`index.elastic` makes them.
"""
from __future__ import annotations

import tantivy
from tantivy import Document, Filter, TextAnalyzerBuilder, Tokenizer

from normaliser.text import fold_for_search
from storage.jsoncodec import dumps_bytes

from . import browse, suggest, works
from .pinyin_input import index_text as pinyin_index_text
from .querytext import prefix_key as _prefix_key
from .querytext import folded, title_keys
from .variants import document_stems

TOKENIZER = "unioncat"
#: Han characters and kana one per token; runs of any other letters, marks and digits as words.
TOKEN_PATTERN = (r"\p{Han}|[\p{Hiragana}\p{Katakana}]"
                 r"|[[\p{L}\p{N}\p{M}]--\p{Han}--\p{Hiragana}--\p{Katakana}]+")
#: The ``stem`` field's analyzer: its text (:func:`index.variants.document_stems`) is Snowball stems of ASCII
#: words, letters only, one space apart, so split at the spaces it gives the tokens :data:`TOKEN_PATTERN` would,
#: for a quarter of the regex's cost a token (~0.1 against ~0.4 µs; 41 of a document's 128 analysed tokens).
STEM_TOKENIZER = "unioncat_stems"


def analyzer(tokenizer: Tokenizer | None = None) -> tantivy.TextAnalyzer:
    """The text fields' analyzer: ``tokenizer`` (by default :data:`TOKEN_PATTERN`'s), then the same filters."""
    return (TextAnalyzerBuilder(tokenizer or Tokenizer.regex(TOKEN_PATTERN))
            .filter(Filter.remove_long(60)).filter(Filter.lowercase()).filter(Filter.ascii_fold()).build())


def to_tantivy(doc: dict) -> Document:
    """The tantivy document of a search document: the fields of :func:`index.embedded.build_schema`."""
    d = Document()
    d.add_text("id", doc["id"])
    for text in [doc.get("title", ""), *doc.get("title_alt", [])]:
        _add_text(d, "title", text)
    for name in doc.get("authors", []) or [doc.get("author", "")]:
        _add_text(d, "author", name)
    for subject in doc.get("subjects", []):
        _add_text(d, "subject", subject)
    for heading in doc.get("subject_headings", []):
        d.add_text("subject_facet", heading)
    _add_text(d, "publisher", doc.get("publisher", ""))
    if doc.get("all"):    # a whole document's text: folded as it is, never kept in the short values' memo
        d.add_text("all", fold_for_search(doc["all"]))
    _add_text(d, "pinyin", pinyin_index_text(doc))
    d.add_text("stem", document_stems(doc.get("all", ""), doc.get("languages", [])))
    for key in title_keys(doc):
        d.add_text("title_key", key)
    keys = suggest.keys(doc)
    for field, values in [*keys.items(), *browse.keys(doc).items(), (suggest.START_FIELD, suggest.starts(keys))]:
        for value in values:
            d.add_text(field, value)
    for value in [*doc.get("isbns", []), *doc.get("invalid_isbns", [])]:
        d.add_text("isbn", value)
    for value in doc.get("issns", []):
        d.add_text("issn", value)
    for value in doc.get("call_numbers", []):
        d.add_text("callnumber", _prefix_key(value))
    for c in doc.get("classifications", []):
        d.add_text("classification", _prefix_key(c["value"]))
    for value in doc.get("class_tops", []):
        d.add_text("class_facet", value)
    for field, key in (("library", "libraries"), ("region", "regions"), ("language", "languages")):
        for value in dict.fromkeys(doc.get(key, [])):
            if value:
                d.add_text(field, value)
    d.add_text("format", doc.get("format") or "other")
    d.add_text("title_sort", doc.get("title_sort", ""))
    if doc.get("year") is not None:
        d.add_integer("year", int(doc["year"]))
    d.add_integer("library_count", int(doc.get("library_count", 0)))
    d.add_integer(works.HASH_FIELD, works.work_hash(doc))
    # compact JSON through the store's codec (orjson: ~4× cheaper than ``json.dumps``), the same dict read back
    d.add_bytes("_source", dumps_bytes(doc))
    return d


def _add_text(doc: Document, field: str, text: str) -> None:
    if text:
        doc.add_text(field, folded(text))
