"""The browse pages and their JSON twins (``web/browse.py``) on both backends, and the links that lead to them."""
from __future__ import annotations

import re
from html import unescape

import pytest
from search_backends import KINDS
from test_browse import catalogue
from test_web import SOURCES

import dedupe.store  # noqa: F401  (declares the cluster tables)
from consortium.load import parse_sources
from dedupe.store import ClusterStore
from index.documents import to_document
from storage.db import make_engine, sqlite_url
from unioncat.schema import ensure_schema
from web import create_app


def browse_app(index, tmp):
    """The app over ``test_browse``'s catalogue, in the cluster store and in ``index``."""
    engine = make_engine(sqlite_url(tmp / "catalogue.db"))
    ensure_schema(engine)
    sources = parse_sources(SOURCES, tmp / "sources.yaml")
    clusters = catalogue()
    ClusterStore(engine).save(clusters)
    index.add(to_document(c, {s.id: (s.name, s.region) for s in sources.sources}) for c in clusters)
    index.commit()
    return create_app({"SOURCES": sources, "DB_ENGINE": engine, "SEARCH_BACKEND": index, "SECRET_KEY": "test",
                       "TESTING": True})


@pytest.fixture(scope="module", params=KINDS)
def client(request, backend_factory, tmp_path_factory):
    app = browse_app(backend_factory(request.param), tmp_path_factory.mktemp("browse-web"))
    yield app.test_client()
    app.extensions["unioncat"].engine.dispose()


def test_authors_json_links_each_heading_to_its_search(client):
    data = client.get("/browse/authors.json?from=smi&size=2").get_json()
    assert [e["heading"] for e in data["before"]] == ["Pirsig, Robert M.", "Ruskin, John, 1819-1900",
                                                      "Samuelson, Paul A."]
    assert [(e["heading"], e["count"]) for e in data["entries"]] == [("Smith, Adam", 1), ("Smith, John", 1)]
    assert data["entries"][0]["url"] == "/search?author=Smith,+Adam"
    following = client.get(data["next"].replace("/browse/authors?", "/browse/authors.json?")).get_json()
    assert [e["heading"] for e in following["entries"]] == ["俞平伯"] and following["next"] is None
    # an author link searches, and finds the book
    hits = client.get(data["entries"][1]["url"].replace("/search?", "/search.json?")).get_json()["hits"]
    assert [h["id"] for h in hits] == ["b3"]


def test_authors_page_has_a_to_z_and_turns_pages(client):
    page = client.get("/browse/authors?from=R&size=2")
    assert page.status_code == 200
    html = page.text
    assert '<a href="/browse/authors?from=Z">Z</a>' in html
    assert [unescape(h) for h in re.findall(r'<a href="/search\?author=[^"]+">([^<]+)</a>', html)][-2:] == [
        "Ruskin, John, 1819-1900", "Samuelson, Paul A."]
    previous = unescape(re.search(r'<a rel="prev" href="([^"]+)"', html).group(1))
    assert "back=1" in previous
    earlier = client.get(previous).text
    # the page before starts before the first heading shown (曹雪芹 among the neighbours)
    assert "Ba, Jin" in earlier and "Pirsig, Robert M." not in earlier and 'rel="prev"' not in earlier


def test_subjects_page_links_subject_searches(client):
    html = client.get("/browse/subjects?from=econ").text
    assert '<a href="/search?subject=Economics">Economics</a> <span class="count">(2 records)</span>' in html


def test_shelf_list_around_a_record_from_its_call_number(client):
    record = client.get("/record/b3").text
    shelf = unescape(re.search(r'<a class="shelf-link" href="([^"]+)"', record).group(1))
    assert shelf == "/browse/shelf?scheme=lcc&class=DS735+.S6&around=b3"
    html = client.get(shelf).text
    current = re.search(r'<li class="current" aria-current="true">(.*?)</li>', html, re.S).group(1)
    assert "DS735 .S6" in current and "The history of China" in current
    data = client.get(shelf.replace("/browse/shelf?", "/browse/shelf.json?")).get_json()
    assert [e["id"] for e in data["before"]] == ["b8", "b4"]
    assert [e["id"] for e in data["entries"]][:3] == ["b3", "b2", "b9"]
    assert data["entries"][0]["title"] == "The history of China" and data["entries"][0]["url"] == "/record/b3"


def test_clc_shelf_list_by_class(client):
    data = client.get("/browse/shelf.json?scheme=clc&class=I2&size=3").get_json()
    assert [(e["heading"], e["title"]) for e in data["entries"]] == [
        ("I207.411", "红楼梦研究"), ("I209.2", "中国文学史"), ("I242.4", "红楼梦")]
    assert [e["heading"] for e in data["before"]] == ["F0"] and data["next"]
    assert data["previous"] is None  # F0 starts the CLC shelf


def test_browse_errors_are_clear(client):
    bad = client.get("/browse/shelf.json?scheme=ddc&class=300")
    assert bad.status_code == 400 and "expected one of clc, lcc" in bad.get_json()["error"]["message"]
    assert client.get("/browse/publishers").status_code == 404
    assert client.get("/browse/shelf.json?scheme=lcc&around=nope").status_code == 404
    assert client.get("/browse/shelf.json?scheme=lcc&around=b5").status_code == 400  # only a CLC class
    assert client.get("/browse/authors.json?size=abc").get_json()["size"] == 20
    assert client.get("/browse/authors.json?from=zzzz").get_json()["entries"] == []
    assert "Nothing files here" in client.get("/browse/authors?from=zzzz").text


def test_home_page_links_the_lists_and_chinese_ui_is_translated(client):
    home = client.get("/").text
    assert 'href="/browse/authors" id="browse-authors"' in home and 'id="browse-shelf"' in home
    zh = client.get("/browse/shelf?scheme=clc&class=I2&size=2&lang=zh").text
    assert "排架目录" in zh and "中国图书馆分类法（中图法）" in zh and ">下一页</a>" in zh and "(1 家图书馆)" in zh
    authors = client.get("/browse/authors?lang=zh").text
    assert "<h1 id=\"browse-title\">责任者（按字顺）</h1>" in authors and "(2 条记录)" in authors
    assert "中文标目按拼音排序" in authors
