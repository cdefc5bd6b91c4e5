"""Elasticsearch specifics: nested holdings, the alias swap, bulk retries, a node that goes away.

The shared search contract runs against this backend in test_backend_contract.py.
"""
from __future__ import annotations

import threading

import pytest
from catalogue_fixtures import LIBRARIES, cluster, sample_clusters
from peers.es_proxy import EsProxy

from index import elastic
from index.backend import SearchError, SearchQuery
from index.documents import to_document
from index.elastic import ElasticsearchBackend
from index.elastic_query import build_query


def docs(n: int, prefix: str = "d", title: str = "Volume") -> list[dict]:
    return [to_document(cluster(f"{prefix}{i}", f"{title} {i}", holdings=[("pku", f"A{i}"), ("fdu", f"B{i}")]),
                        LIBRARIES) for i in range(n)]


@pytest.fixture
def es(backend_factory) -> ElasticsearchBackend:
    return backend_factory("elasticsearch")


@pytest.fixture
def proxy(elasticsearch):
    p = EsProxy(elasticsearch.url)
    yield p
    p.close()


def test_mapping_holdings_are_nested_and_match_within_one_copy(es):
    es.add(to_document(c, LIBRARIES) for c in sample_clusters())
    es.commit()
    (index,) = es._live_indices()
    mapping = es.client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["properties"]["holdings"]["type"] == "nested"
    assert mapping["_meta"]["unioncat_mapping"] == elastic.MAPPING_VERSION

    def held(region: str, call_number: str) -> list[str]:
        query = {"nested": {"path": "holdings", "query": {"bool": {"filter": [
            {"term": {"holdings.region": region}}, {"term": {"holdings.call_number": call_number}}]}}}}
        return [h["_id"] for h in es.client.search(index=es.alias, query=query)["hits"]["hits"]]

    # c-zh-history: K20/1 at pku (Beijing), K20/3 at fdu (Shanghai); a flat mapping would mix the copies
    assert held("Beijing", "K20/1") == ["c-zh-history"]
    assert held("Shanghai", "K20/3") == ["c-zh-history"]
    assert held("Shanghai", "K20/1") == []
    res = es.search(SearchQuery(filters={"region": ["Shanghai"]}))
    assert sorted(h.id for h in res.hits) == ["c-en-map", "c-hlm-t", "c-zh-history"]
    assert dict(res.facets["region"]) == {"Shanghai": 3, "Beijing": 1}
    assert es.stats()["documents"] == 6


def test_incremental_writes_stay_in_the_live_index(es):
    es.add(docs(3))
    es.commit()
    (first,) = es._live_indices()
    es.delete(["d1"])
    es.add(docs(1, prefix="e"))
    es.commit()
    assert es._live_indices() == [first]   # no rebuild: same index behind the alias
    assert sorted(h.id for h in es.search(SearchQuery(limit=10)).hits) == ["d0", "d2", "e0"]
    assert es.get("d1") is None


def test_rebuild_swaps_the_alias_and_drops_the_old_index(es):
    es.add(docs(2))
    es.commit()
    (old,) = es._live_indices()
    es.clear()
    es.add(docs(3, prefix="n"))
    assert es._live_indices() == [old] and es.count() == 2
    es.commit()
    (new,) = es._live_indices()
    assert new != old and es.count() == 3
    assert not es.client.indices.exists(index=old)


def test_queries_during_alias_swaps_never_fail(es):
    """Readers searching while the index is rebuilt twice see the old or the new catalogue, never an error."""
    es.add(docs(40))
    es.commit()
    es.drop_delay = 1.0   # the production default: searches routed to the old index finish first
    reader = ElasticsearchBackend(es.url, index=es.alias)
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                res = reader.search(SearchQuery("volume", filters={"region": ["Beijing"]}, limit=5))
                seen.append(res.total)
            except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for size in (60, 80):
            es.clear()
            es.add(docs(size))
            es.commit()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        reader.close()
    assert not errors, errors
    assert set(seen) <= {40, 60, 80} and 80 in seen and len(seen) > 10


def test_bulk_retries_429(proxy, backend_factory):
    es = backend_factory("elasticsearch")
    via_proxy = ElasticsearchBackend(proxy.url, index=es.alias)
    proxy.reject_bulk(2)   # the node's write queue is full twice
    via_proxy.add(docs(5))
    via_proxy.commit()
    assert proxy.bulk_rejections == 0 and proxy.bulk_requests >= 3
    assert es.count() == 5
    via_proxy.close()


def test_node_down_is_a_clear_error_and_the_live_index_survives(proxy, backend_factory):
    es = backend_factory("elasticsearch")
    es.add(docs(4))
    es.commit()
    via_proxy = ElasticsearchBackend(proxy.url, index=es.alias, request_timeout=5)
    via_proxy.clear()
    via_proxy.add(docs(2, prefix="x"))
    proxy.down()
    with pytest.raises(SearchError, match=r"Elasticsearch at http://127\.0\.0\.1:\d+"):
        via_proxy.add(docs(2, prefix="y"))
    with pytest.raises(SearchError):
        via_proxy.search(SearchQuery("volume"))
    with pytest.raises(SearchError):
        via_proxy.commit()
    assert es.count() == 4   # readers of the real node still see the old catalogue
    proxy.up()
    rerun = ElasticsearchBackend(proxy.url, index=es.alias)
    rerun.clear()            # drops the unfinished index of the failed run
    rerun.add(docs(6, prefix="z"))
    rerun.commit()
    assert es.count() == 6
    leftovers = es.client.indices.get(index=f"{es.alias}-v*")
    assert list(leftovers) == es._live_indices()
    rerun.close()


def test_refused_document_is_reported(es):
    good, bad = docs(2)
    bad["year"] = 99_999_999_999   # beyond an integer field: the node refuses this one document
    with pytest.raises(SearchError, match=r"1 document\(s\) refused, the first \(d1\)"):
        es.add([good, bad])


def test_stale_mapping_asks_for_a_rebuild(es, monkeypatch):
    es.add(docs(1))
    es.commit()
    assert es.needs_rebuild() is False
    monkeypatch.setattr(elastic, "MAPPING_VERSION", elastic.MAPPING_VERSION + 1)
    assert es.needs_rebuild() is True


def test_unreachable_cluster():
    from socket import socket
    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = ElasticsearchBackend(f"http://127.0.0.1:{port}", request_timeout=2)
    for call in (lambda: dead.search(SearchQuery("x")), dead.count, lambda: dead.add(docs(1))):
        with pytest.raises(SearchError, match=f"Elasticsearch at http://127.0.0.1:{port}"):
            call()


def test_settings_choose_the_backend(tmp_path):
    from unioncat.pipeline import Catalogue
    from unioncat.settings import load_settings

    s = load_settings(env={"UNIONCAT_SEARCH": "https://es.example.edu.cn:9200", "UNIONCAT_ES_INDEX": "jalis",
                           "UNIONCAT_ES_SHARDS": "3", "UNIONCAT_ES_REPLICAS": "1"})
    assert s.uses_elasticsearch and (s.es_index, s.es_shards, s.es_replicas) == ("jalis", 3, 1)
    assert not load_settings(env={}).uses_elasticsearch
    for bad in ("elastic", "es1:9200", "ftp://es"):
        with pytest.raises(ValueError, match="expected 'embedded' or an Elasticsearch URL"):
            load_settings(env={"UNIONCAT_SEARCH": bad})
    (tmp_path / "sources.yaml").write_text(
        "consortium: {name: T}\nsources: [{id: a, name: A, region: R, protocol: file, path: a.mrc}]\n", encoding="utf-8")
    cat = Catalogue(load_settings(env={"UNIONCAT_SEARCH": "http://127.0.0.1:9"}, data_dir=tmp_path / "var",
                                  sources_path=tmp_path / "sources.yaml"))
    assert isinstance(cat.index, ElasticsearchBackend) and cat.index.alias == "unioncat"
    assert not (tmp_path / "var" / "index").exists()   # no embedded index made on the side
    cat.close()


def test_fields_mapped_ahead_of_the_contract(es):
    """``issn`` and ``callnumber`` are mapped before index/backend.py lists them as advanced fields."""
    es.add(to_document(c, LIBRARIES) for c in sample_clusters())
    es.commit()

    def found(**fields) -> list[str]:
        query = build_query(SearchQuery(fields=fields))   # not validated: the names are not in FIELDS yet
        return sorted(h["_id"] for h in es.client.search(index=es.alias, query=query)["hits"]["hits"])

    assert found(callnumber="K20/3") == ["c-zh-history"]
    assert found(callnumber="DS735") == ["c-en-china"]
    assert found(callnumber="-DS735", title="china") == []
    assert found(issn="00219118") == found(issn="0021-9118") == ["c-en-serial"]


def test_credentials_in_the_url_stay_out_of_messages():
    from index.elastic import split_credentials
    assert split_credentials("https://ops:s%40cret@es.example.edu.cn:9200") == (
        "https://es.example.edu.cn:9200", ("ops", "s@cret"))
    assert split_credentials("http://127.0.0.1:9200") == ("http://127.0.0.1:9200", None)
    from socket import socket
    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = ElasticsearchBackend(f"http://ops:secret@127.0.0.1:{port}", request_timeout=2)
    with pytest.raises(SearchError) as err:
        dead.count()
    assert "secret" not in str(err.value) and f"http://127.0.0.1:{port}" in str(err.value)
