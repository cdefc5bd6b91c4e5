"""The pipeline into Elasticsearch gives the same answers as the embedded default on the same data.

The demo consortium's file members (real LoC records, Chinese ones with Han 880s, six ILS export
styles) are harvested and deduplicated once; the clusters are then indexed into both backends and a set
of reader queries must return the same ids, totals and facet counts.  Then the node goes away in the
middle of a rebuild: the build fails clearly, readers keep the old index, and a rerun completes.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from peers.es_proxy import EsProxy

from index.backend import SearchError, SearchQuery
from unioncat import pipeline
from unioncat.cli import main
from demo.consortium import build_demo
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.loc

SORT_KEYS = {"year": "year", "-year": "year", "title": "title_sort"}
QUERIES = [
    SearchQuery(),
    SearchQuery("history"),
    SearchQuery("united states", sort="year"),
    SearchQuery('"united states"'),
    SearchQuery("china -history"),
    SearchQuery("中国"),
    SearchQuery("中國"),
    SearchQuery("zhong guo"),
    SearchQuery(filters={"region": ["Suzhou"]}, sort="title"),
    SearchQuery("law", filters={"library": ["nju", "suda"]}),
    SearchQuery(filters={"year": ["1990-1999"]}, sort="-year"),
    SearchQuery(filters={"language": ["chi"], "format": ["book"]}, sort="title"),
    SearchQuery(fields={"author": "smith"}),
    SearchQuery(fields={"title": "history", "publisher": "co"}),
]


@pytest.fixture(scope="module")
def demo_catalogue(tmp_path_factory) -> Catalogue:
    """The demo consortium's file members, harvested, normalised and deduplicated (no index yet)."""
    root = tmp_path_factory.mktemp("demo-es")
    cache = Path(os.environ.get("UNIONCAT_CACHE") or REPO / ".cache")
    build_demo(root / "var" / "demo", cache, records=400, chinese=80, log=lambda _m: None)
    config = yaml.safe_load((REPO / "sources.yaml").read_text(encoding="utf-8"))
    config["sources"] = [s for s in config["sources"] if s.get("protocol") == "file"]
    config.pop("groups", None)  # a group names the OAI member left out here
    (root / "sources.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    settings = load_settings(env={}, sources_path=root / "sources.yaml", data_dir=root / "var")
    cat = Catalogue(settings)
    pipeline.harvest(cat, pipeline.select_sources(cat))
    pipeline.build(cat)          # embedded index, the reference
    yield cat
    cat.close()


def es_catalogue(cat: Catalogue, url: str, alias: str) -> Catalogue:
    return Catalogue(replace(cat.settings, search=url, es_index=alias), sources=cat.sources)


def answers(index, q: SearchQuery) -> tuple:
    res = index.search(SearchQuery(**{**q.__dict__, "limit": 10_000}))
    # relevance scores differ between engines, and ties in a sort may come in any order: the set of hits
    # and the sequence of sort keys must not
    keys = [h.doc.get(SORT_KEYS[q.sort]) for h in res.hits] if q.sort in SORT_KEYS else []
    return res.total, sorted(h.id for h in res.hits), keys, res.facets


def test_same_answers_as_embedded(demo_catalogue, elasticsearch):
    embedded = demo_catalogue.index
    es_cat = es_catalogue(demo_catalogue, elasticsearch.url, "pipeline-same")
    report = pipeline.index_stage(es_cat, reindex=True, batch=200)
    assert report.total == embedded.count() == demo_catalogue.clusters.count() > 400
    empty = []
    for q in QUERIES:
        expected = answers(embedded, q)
        got = answers(es_cat.index, q)
        assert got[:3] == expected[:3], q
        for name in expected[3]:
            assert got[3][name] == expected[3][name], (q, name, got[3][name], expected[3][name])
        if not expected[0]:
            empty.append(q)
    assert not empty, f"queries that test nothing on the demo data: {empty}"
    es_cat.close()


def test_node_down_mid_rebuild_then_rerun(demo_catalogue, elasticsearch):
    proxy = EsProxy(elasticsearch.url)
    es_cat = es_catalogue(demo_catalogue, proxy.url, "pipeline-down")
    try:
        pipeline.index_stage(es_cat, batch=200)
        before = es_cat.index.count()

        def kill_after_first_batch(message: str) -> None:
            if message.startswith("indexed"):
                proxy.down()
        with pytest.raises(SearchError, match="Elasticsearch at"):
            pipeline.index_stage(es_cat, progress=kill_after_first_batch, reindex=True, batch=100)
        direct = es_catalogue(demo_catalogue, elasticsearch.url, "pipeline-down")
        assert direct.index.count() == before      # readers still have the whole old index
        proxy.up()
        es_cat.close()
        es_cat = es_catalogue(demo_catalogue, proxy.url, "pipeline-down")
        report = pipeline.index_stage(es_cat, reindex=True, batch=100)
        assert report.total == before
        assert answers(direct.index, QUERIES[5]) == answers(demo_catalogue.index, QUERIES[5])
        direct.close()
    finally:
        es_cat.close()
        proxy.close()


def test_cli_build_against_a_dead_cluster_fails_clearly(demo_catalogue, tmp_path):
    from socket import socket
    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["--sources", str(demo_catalogue.settings.sources_path),
                                       "--data", str(demo_catalogue.settings.data_dir), "build", "--reindex"],
                                env={"UNIONCAT_SEARCH": f"http://127.0.0.1:{port}"})
    assert result.exit_code == 1
    assert f"indexing failed: Elasticsearch at http://127.0.0.1:{port}" in result.output
    assert "run `unioncat build` again" in result.output


def test_cli_and_web_search_the_cluster(demo_catalogue, elasticsearch):
    """`unioncat build --reindex` and `unioncat search` with UNIONCAT_SEARCH set, and the app `serve` runs."""
    from unioncat.present import make_app

    settings = demo_catalogue.settings
    args = ["--sources", str(settings.sources_path), "--data", str(settings.data_dir)]
    env = {"UNIONCAT_SEARCH": elasticsearch.url, "UNIONCAT_ES_INDEX": "pipeline-cli"}
    built = CliRunner().invoke(main, [*args, "build", "--reindex"], env=env)
    assert built.exit_code == 0, built.output
    out = CliRunner().invoke(main, [*args, "search", "--json", "中国"], env=env)
    reference = CliRunner().invoke(main, [*args, "search", "--json", "中国"], env={"UNIONCAT_SEARCH": "embedded"})
    assert out.exit_code == 0 and reference.exit_code == 0
    got, expected = json.loads(out.stdout), json.loads(reference.stdout)
    assert got["total"] == expected["total"] > 0
    assert {h["id"] for h in got["hits"]} == {h["id"] for h in expected["hits"]}

    es_cat = es_catalogue(demo_catalogue, elasticsearch.url, "pipeline-cli")
    with make_app(es_cat).test_client() as client:      # what `unioncat serve` serves
        page = client.get("/search.json", query_string={"q": "history", "f": "region:Suzhou"})
    assert page.status_code == 200 and page.get_json()["total"] == answers(
        demo_catalogue.index, SearchQuery("history", filters={"region": ["Suzhou"]}, group_works=True))[0] > 0
    es_cat.close()


def test_served_catalogue_with_the_cluster_down_says_so(demo_catalogue):
    from socket import socket

    from unioncat.present import make_app
    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = es_catalogue(demo_catalogue, f"http://127.0.0.1:{port}", "unioncat")
    with make_app(dead).test_client() as client:
        page = client.get("/search", query_string={"q": "history"})
    assert page.status_code == 503 and "Search unavailable" in page.get_data(as_text=True)
    dead.close()
