"""Both search backends behind one fixture, for the suites that must hold for either.

``make_backend(kind, name)`` opens an empty backend: ``embedded`` in a temporary folder, or
``elasticsearch`` on the session's real node (``tests/peers/elastic.py``) behind an alias of its own,
so tests never see each other's documents.
"""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import pytest

from index.backend import SearchBackend

KINDS = ("embedded", "elasticsearch")
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def backend_factory(request, tmp_path_factory) -> Iterator[Callable[[str], SearchBackend]]:
    """``factory(kind)`` → a new empty backend of that kind; all are closed (and ES aliases dropped) at the end."""
    opened: list[SearchBackend] = []

    def make(kind: str) -> SearchBackend:
        if kind == "embedded":
            from index.embedded import EmbeddedIndex
            backend = EmbeddedIndex(tmp_path_factory.mktemp("index"), heap_size=15_000_000)
        elif kind == "elasticsearch":
            from index.elastic import ElasticsearchBackend
            node = request.getfixturevalue("elasticsearch")
            backend = ElasticsearchBackend(node.url, index=f"t{next(_serial)}-{uuid.uuid4().hex[:8]}", drop_delay=0.2)
        else:
            raise ValueError(kind)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()
        alias = getattr(backend, "alias", None)
        if alias:
            with request.getfixturevalue("elasticsearch").client() as es:
                es.indices.delete(index=f"{alias}-v*", ignore_unavailable=True, allow_no_indices=True)
                es.options(ignore_status=404).indices.delete_index_template(name=alias)


@pytest.fixture(params=KINDS)
def fresh_backend(request, backend_factory) -> SearchBackend:
    """A new empty backend, once per kind."""
    return backend_factory(request.param)
