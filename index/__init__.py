"""Search: cluster → document, and the backends that index and query documents.

``documents.to_document`` is the only place that decides what a search
document holds; ``backend`` states what every backend does (``SearchBackend``);
``embedded.EmbeddedIndex`` is the default, on tantivy, in a directory next to
the database.  An Elasticsearch backend will implement the same protocol.
"""
from .backend import Hit, SearchBackend, SearchQuery, SearchResults
from .documents import to_document

__all__ = ["Hit", "SearchBackend", "SearchQuery", "SearchResults", "to_document"]
