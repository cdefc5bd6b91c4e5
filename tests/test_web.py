import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from catalogue_fixtures import Contributor, ParallelField, cluster, sample_clusters

import dedupe.store  # noqa: F401  (declares the cluster tables)
import normaliser.store  # noqa: F401
from dedupe.store import ClusterStore
from consortium.load import parse_sources
from storage.db import make_engine, sqlite_url
from harvester.raw import RawRecord
from harvester.store import Counts, QuarantinedItem, RawStore
from index.documents import to_document
from index.embedded import EmbeddedIndex
from unioncat.schema import ensure_schema
from web import create_app

PASSWORD = "correct horse battery staple"
SOURCES = {
    "consortium": {
        "name": "Test Library Consortium",
        "ill_url": "https://ill.example.org/request",
        "ask_url": "https://ask.example.org/chat?question={citation}",
        "login_url": "https://sso.example.org/login",
        "ill_params": {"rfr_id": "info:sid/unioncat:test"},
        "base_url": "https://cat.example.org",
    },
    "sources": [
        {"id": "pku", "name": "Peking University Library", "region": "Beijing", "protocol": "oai",
         "url": "https://pku.example.edu.cn/oai", "opac_url": "https://opac.pku.example.edu.cn/record/{local_id}"},
        {"id": "thu", "name": "Tsinghua University Library", "region": "Beijing", "protocol": "file",
         "path": "/nonexistent/thu.mrc", "opac_isbn_url": "https://opac.thu.example.edu.cn/search?isbn={isbn}",
         "ill_url": "https://ill.thu.example.edu.cn/openurl"},
        {"id": "fdu", "name": "Fudan University Library", "region": "Shanghai", "protocol": "oai",
         "url": "https://fdu.example.edu.cn/oai", "enabled": False},
    ],
}
XSS = "<script>alert(1)</script>"


def hostile_cluster():
    c = cluster("c-xss", XSS, year=2020, languages=["eng"], subjects=[XSS],
                contributors=[Contributor('"><img src=x onerror=alert(2)>', primary=True)],
                urls=["javascript:alert(3)", "https://example.org/ok"], notes=[XSS])
    c.record.holdings[0].call_number = "<b>bold</b>"
    return c


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    engine = make_engine(sqlite_url(tmp / "catalogue.db"))
    ensure_schema(engine)  # as every process opens it: the app creates no tables
    sources = parse_sources(SOURCES, tmp / "sources.yaml")
    clusters = sample_clusters() + [hostile_cluster()]
    zh = next(c for c in clusters if c.id == "c-zh-history")
    zh.record.control_number = "CN001"
    zh.record.responsibility = "司马迁著"
    zh.record.parallel = [ParallelField("245", "Zhongguo li shi"), ParallelField("100", "Sima, Qian"),
                          ParallelField("500", "Parallel note")]
    store = ClusterStore(engine)
    store.save(clusters)
    store.save([], deleted=[], redirects={"c-old": "c-zh-history", "c-older": "c-old"})
    store.save([cluster("c-gone", "Withdrawn")])
    store.save([], deleted=["c-gone"])
    libraries = {s.id: (s.name, s.region) for s in sources.sources}
    index = EmbeddedIndex(tmp / "index", heap_size=15_000_000)
    index.add(to_document(c, libraries) for c in clusters)
    index.commit()
    raw = RawStore(engine)
    run = raw.start_run("pku", "oai", True, None)
    raw.apply([RawRecord("pku", f"r{i}", b"payload %d" % i) for i in range(3)], run_id=run)
    raw.finish_run(run, "ok", Counts(added=3))
    run = raw.start_run("thu", "file", False, None)
    raw.quarantine([QuarantinedItem("thu", "bad1", "leader is not ISO 2709")], run_id=run)
    raw.finish_run(run, "failed", Counts(quarantined=1), error="file not found: /nonexistent/thu.mrc <oops>")
    yield {"engine": engine, "sources": sources, "index": index}
    index.close()
    engine.dispose()


def make_app(env, **config):
    return create_app({"SOURCES": env["sources"], "DB_ENGINE": env["engine"], "SEARCH_BACKEND": env["index"],
                       "SECRET_KEY": "test", "TESTING": True, **config})


@pytest.fixture
def client(env):
    return make_app(env, STAFF_PASSWORD=PASSWORD).test_client()


# -- search -------------------------------------------------------------------------------------------
def test_home_page(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert 'name="q"' in html and "Advanced search" in html
    assert "7 results" in html
    assert 'href="/static/style.css"' in html
    assert "Content-Security-Policy" in page.headers


def test_search_results_and_facets(client):
    html = client.get("/search?q=history").text
    assert "The history of China: an introduction" in html
    assert "Held by 2 libraries" in html
    assert 'href="/record/c-en-china"' in html
    # library facet shown by display name, as a toggle link
    assert "Tsinghua University Library" in html
    assert 'href="/search?q=history&amp;f=library:thu">Tsinghua University Library</a>' in html
    # CJK gets a lang attribute
    zh = client.get("/search?q=中国").text
    assert '<span lang="zh">中国历史</span>' in zh


def test_search_json_shape(client):
    data = client.get("/search.json?q=history").get_json()
    assert data["total"] == 1
    hit = data["hits"][0]
    assert {"id", "title", "author", "year", "format", "holdings", "library_count"} <= set(hit)
    assert hit["id"] == "c-en-china" and hit["author"] == "Smith, John" and hit["year"] == 2010
    assert hit["format"] == "book" and hit["library_count"] == 2
    assert hit["holdings"][0] == {
        "source": "thu", "library": "Tsinghua University Library", "region": "Beijing",
        "call_number": "DS735 .S6", "location": "Main stacks",
        "opac_url": "https://opac.thu.example.edu.cn/search?isbn=9780306406157"}
    assert hit["holdings"][1]["opac_url"] == "https://opac.pku.example.edu.cn/record/pku-c-en-china"
    assert set(data["facets"]) == {"library", "region", "language", "format", "year", "subject", "classification"}
    assert {"value": "thu", "label": "Tsinghua University Library", "count": 1, "selected": False} in \
        data["facets"]["library"]


def test_subject_facet_is_counted_when_expanded_or_filtered(client):
    """The subject facet's many headings cost most of a faceted search: the page counts it on request only."""
    data = client.get("/search.json?q=history").get_json()
    assert data["facets"]["subject"] == [] and data["facets"]["library"]
    assert data["expandable"]["subject"]["url"] == "/search?q=history&expand=subject"
    html = client.get("/search?q=history").text
    assert '<a class="expand" href="/search?q=history&amp;expand=subject" rel="nofollow">Show subjects</a>' in html
    expanded = client.get("/search.json?q=history&expand=subject").get_json()
    assert {"value": "China", "label": "China", "count": 1, "selected": False} in expanded["facets"]["subject"]
    assert expanded["expandable"] == {}
    # the subject's link keeps the facet expanded; a subject filter counts it too, with the chosen heading
    assert 'href="/search?q=history&amp;expand=subject&amp;f=subject:China">China</a>' in \
        client.get("/search?q=history&expand=subject").text
    filtered = client.get("/search.json?q=history&f=subject:China").get_json()
    assert [f for f in filtered["facets"]["subject"] if f["value"] == "China"][0]["selected"] is True
    assert "Show subjects" not in client.get("/search?q=history&f=subject:China").text


def test_filters_sort_and_paging(client):
    data = client.get("/search.json?f=library:fdu&f=language:chi").get_json()
    assert sorted(h["id"] for h in data["hits"]) == ["c-hlm-t", "c-zh-history"]
    assert {f["name"] for f in data["query"]["filters"]} == {"library", "language"}
    assert [f for f in data["facets"]["library"] if f["value"] == "fdu"][0]["selected"] is True
    data = client.get("/search.json?sort=year&year_from=1980&year_to=2006").get_json()
    assert [h["year"] for h in data["hits"]] == [1982, 1998, 2005]
    app = client.application
    app.config["PAGE_SIZE"] = 3
    try:
        first = client.get("/search.json?sort=-year").get_json()
        second = client.get("/search.json?sort=-year&page=2").get_json()
        assert first["pages"] == 3 and len(first["hits"]) == 3
        assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}
        html = client.get("/search?sort=-year&page=2").text
        assert 'rel="next" href="/search?sort=-year&amp;page=3"' in html
    finally:
        app.config["PAGE_SIZE"] = 20


def test_advanced_search(client):
    data = client.get("/search.json?title=history&author=smith").get_json()
    assert [h["id"] for h in data["hits"]] == ["c-en-china"]
    assert client.get("/search.json?subject=maps").get_json()["hits"][0]["id"] == "c-en-map"


def test_isbn_with_one_hit_goes_to_record(client):
    response = client.get("/search?q=978-7-02-000220-7")
    assert response.status_code == 302 and response.headers["Location"] == "/record/c-zh-history"
    response = client.get("/search?isbn=702000220X")
    assert response.headers["Location"] == "/record/c-zh-history"
    assert client.get("/search.json?q=702000220X").get_json()["total"] == 1  # the twin answers, not redirects


@pytest.mark.parametrize("query", ['q="foo:(', "q=AND+OR", "q=title:", "page=abc", "page=-5", "page=99999999",
                                   "sort=evil", "f=nonsense", "f=year:abc", "f=bogus:x", "year_from=19x0",
                                   "q=%00", "isbn=xyz", "fmt=json", "_external=1&_anchor=x",
                                   "page=2&_method=POST&_scheme=javascript"])
def test_bad_input_never_500(client, query):
    assert client.get(f"/search?{query}").status_code == 200
    assert client.get(f"/search.json?{query}").status_code == 200


# -- record page --------------------------------------------------------------------------------------
def test_record_page(client):
    response = client.get("/record/c-zh-history")
    assert response.status_code == 200
    html = response.text
    assert '<h1 id="record-title"><span lang="zh">中国历史</span></h1>' in html
    assert "Zhongguo li shi" in html and "Sima, Qian" in html and "Parallel note" in html
    assert "司马迁著" in html and "人民文学出版社" in html and "ISBN 9787020002207" in html
    assert "Held by 3 libraries" in html
    for name in ("Peking University Library", "Tsinghua University Library", "Fudan University Library"):
        assert name in html
    assert "K20/1" in html and "Available" in html
    # OPAC links go through the counting redirect (web/go.py), which lands on the member's OPAC record
    assert 'href="/go/opac/c-zh-history/pku?record=pku-c-zh-history"' in html
    assert client.get("/go/opac/c-zh-history/pku?record=pku-c-zh-history").headers["Location"] == \
        "https://opac.pku.example.edu.cn/record/pku-c-zh-history"
    thu = re.search(r'href="(/go/opac/c-zh-history/thu[^"]*)"', html).group(1).replace("&amp;", "&")
    assert client.get(thu).headers["Location"] == "https://opac.thu.example.edu.cn/search?isbn=9787020002207"
    assert "Request via interlibrary loan" in html and "Ask a librarian" in html and "Sign in" in html


def test_record_json_links(client):
    data = client.get("/record/c-zh-history.json").get_json()
    assert data["id"] == "c-zh-history" and data["library_count"] == 3
    assert data["permalink"] == "https://cat.example.org/record/c-zh-history"
    assert [g["source"] for g in data["holdings"]] == ["pku", "thu", "fdu"]
    assert data["holdings"][0]["library"] == "Peking University Library"
    assert data["holdings"][0]["items"][0]["call_number"] == "K20/1"
    assert data["holdings"][2]["opac_url"] is None  # no OPAC template for fdu
    assert data["record"]["full_title"] == "中国历史"
    ill = urlsplit(data["links"]["ill"])
    assert f"{ill.scheme}://{ill.netloc}{ill.path}" == "https://ill.example.org/request"
    kev = dict(parse_qsl(ill.query))
    assert kev["url_ver"] == "Z39.88-2004" and kev["rft_val_fmt"] == "info:ofi/fmt:kev:mtx:book"
    assert kev["rft.btitle"] == "中国历史" and kev["rft.au"] == "司马迁" and kev["rft.isbn"] == "9787020002207"
    assert kev["rft.date"] == "1998" and kev["rft.pub"] == "人民文学出版社" and kev["rft.place"] == "北京"
    assert [v for k, v in parse_qsl(ill.query) if k == "rft_id"] == [
        "https://cat.example.org/record/c-zh-history", "urn:ISBN:9787020002207"]
    assert kev["rfr_id"] == "info:sid/unioncat:test"
    ask = data["links"]["ask"]
    assert ask.startswith("https://ask.example.org/chat?question=")
    assert "%E5%8F%B8%E9%A9%AC%E8%BF%81" in ask  # 司马迁, encoded
    assert data["links"]["login"] == ("https://sso.example.org/login?target="
                                      "https%3A%2F%2Fcat.example.org%2Frecord%2Fc-zh-history.json")


def test_ill_goes_to_readers_own_library_service(client):
    data = client.get("/record/c-en-china.json?home=thu").get_json()
    assert data["links"]["ill"].startswith("https://ill.thu.example.edu.cn/openurl?url_ver=Z39.88-2004")


def test_retired_ids_redirect_permanently(client):
    response = client.get("/record/c-old")
    assert response.status_code == 301 and response.headers["Location"] == "/record/c-zh-history"
    response = client.get("/record/c-older.json")
    assert response.status_code == 301 and response.headers["Location"] == "/record/c-zh-history.json"


def test_unknown_and_withdrawn_records_are_404(client):
    for path in ("/record/nope", "/record/c-gone"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Record not found" in response.text
    response = client.get("/record/nope.json")
    assert response.status_code == 404 and response.get_json()["error"]["status"] == 404
    assert client.get("/no/such/page").status_code == 404


def test_record_text_is_escaped(client):
    for path in ("/record/c-xss", f"/search?q=alert", "/search?f=subject:" + XSS):
        html = client.get(path).text
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html
    html = client.get("/record/c-xss").text
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'href="javascript:' not in html and 'href="https://example.org/ok"' in html
    assert client.get("/record/c-xss.json").get_json()["record"]["title"] == XSS


def test_templates_never_mark_data_safe():
    from pathlib import Path

    import web
    for template in (Path(web.__file__).parent / "templates").glob("*.html"):
        assert "|safe" not in template.read_text().replace(" ", ""), template.name


# -- staff ----------------------------------------------------------------------------------------------
def _login(client, password=PASSWORD, next_url=None, username="admin"):
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {"username": username, "password": password, "csrf_token": token}
    if next_url:
        data["next"] = next_url
    return client.post("/staff/login", data=data)


def test_staff_requires_login(client):
    response = client.get("/staff/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")
    assert client.get("/staff/status.json").status_code == 401


def test_staff_wrong_password(client):
    response = _login(client, "guess")
    assert response.status_code == 401 and "That name and password do not match an account." in response.text
    assert client.get("/staff/").status_code == 302


def test_staff_post_without_csrf_is_rejected(client):
    response = client.post("/staff/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400 and "Form rejected" in response.text
    client.get("/staff/login")  # a session token now exists, but a wrong one is still refused
    assert client.post("/staff/login", data={"username": "admin", "password": PASSWORD,
                                             "csrf_token": "forged"}).status_code == 400
    assert client.get("/staff/").status_code == 302


def test_staff_login_status_and_logout(client):
    response = _login(client, next_url="/staff/")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    html = client.get("/staff/").text
    for text in ("Peking University Library", "Tsinghua University Library", "Fudan University Library",
                 "oai", "file", "failed", "ok", "file not found: /nonexistent/thu.mrc &lt;oops&gt;"):
        assert text in html
    data = client.get("/staff/status.json").get_json()
    rows = {s["id"]: s for s in data["sources"]}
    assert list(rows) == ["thu", "pku", "fdu"]  # the failing member first, the disabled one last
    assert rows["pku"]["records"] == 3 and rows["pku"]["last_run"]["status"] == "ok"
    assert rows["pku"]["last_run"]["counts"]["added"] == 3 and rows["pku"]["last_run"]["duration_s"] >= 0
    assert rows["thu"]["last_run"]["status"] == "failed" and rows["thu"]["quarantined"] == 1
    assert "file not found" in rows["thu"]["last_run"]["error"]
    assert rows["fdu"]["enabled"] is False and rows["fdu"]["last_run"] is None
    assert data["totals"]["clusters"] == 7 and data["totals"]["failing"] == 1 and data["index"]["documents"] == 7
    # sign out needs the token too
    assert client.post("/staff/logout").status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302


def test_login_ignores_offsite_next(client):
    response = _login(client, next_url="//evil.example.org/")
    assert response.headers["Location"] == "/staff/"


def test_staff_disabled_without_password(env):
    client = make_app(env).test_client()
    response = client.get("/staff/")
    assert response.status_code == 503 and "no staff password is configured" in response.text
    assert client.get("/staff/status.json").get_json()["error"]["status"] == 503
    assert client.get("/").status_code == 200


def test_create_app_requires_config(env):
    with pytest.raises(ValueError, match="SOURCES"):
        create_app({"DB_ENGINE": env["engine"], "SEARCH_BACKEND": env["index"]})
    with pytest.raises(ValueError, match="DATABASE_URL"):
        create_app({"SOURCES": env["sources"], "SEARCH_BACKEND": env["index"]})
    with pytest.raises(ValueError, match="INDEX_PATH"):
        create_app({"SOURCES": env["sources"], "DB_ENGINE": env["engine"]})


def test_backend_factory_and_database_url(env, tmp_path):
    calls = []

    def factory():
        calls.append(1)
        return env["index"]
    url = str(env["engine"].url)
    app = create_app({"SOURCES": env["sources"], "DATABASE_URL": url, "SEARCH_BACKEND": factory})
    client = app.test_client()
    assert client.get("/search.json?q=history").get_json()["total"] == 1
    assert client.get("/search.json?q=china").get_json()["total"] >= 1
    assert calls == [1]
    app.extensions["unioncat"].engine.dispose()


def test_search_backend_failure_is_503(env):
    from index.backend import SearchError

    class Broken:
        def search(self, q):
            raise SearchError("index directory is gone")

        def count(self):
            return 0
    client = make_app(env, SEARCH_BACKEND=Broken()).test_client()
    response = client.get("/search?q=x")
    assert response.status_code == 503 and "Search unavailable" in response.text
    assert client.get("/search.json?q=x").get_json()["error"]["message"] == "index directory is gone"
    assert client.get("/record/c-zh-history").status_code == 200  # record pages read the store


def test_result_rows_show_the_original_script_title_above_the_romanised_one(tmp_path):
    """LoC catalogues Chinese books with a romanised 245 and the Han title in 880: readers look for the Han."""
    from dedupe.model import Cluster
    from dedupe.store import ClusterStore
    from consortium.load import parse_sources
    from storage.db import make_engine, sqlite_url
    from index.documents import to_document
    from index.embedded import EmbeddedIndex
    from normaliser.model import Holding, ParallelField, Record
    from web import create_app

    engine = make_engine(sqlite_url(tmp_path / "db.sqlite"))
    ensure_schema(engine)
    rec = Record(source="a", local_id="1", title="Zhongguo Guizhou Miao zu xiu hui", year=1998,
                 parallel=[ParallelField("245", "中國貴州苗族繡繪 / 速泰熙, 楊志麟 ; 歧従文", "$1")], holdings=[Holding("a", "1")])
    cluster = Cluster(id="ucx", record=rec, members=[("a", "1")])
    ClusterStore(engine).save([cluster])
    index = EmbeddedIndex(tmp_path / "ix")
    index.add([to_document(cluster, {"a": ("Library A", "Nanjing")})])
    index.commit()
    sources = parse_sources({"consortium": {"name": "C"}, "sources": [
        {"id": "a", "name": "Library A", "region": "Nanjing", "protocol": "file", "path": "x.mrc"}]}, tmp_path / "s.yaml")
    client = create_app({"SOURCES": sources, "DB_ENGINE": engine, "SEARCH_BACKEND": index}).test_client()
    page = client.get("/search?q=苗族").get_data(as_text=True)
    assert page.index("中國貴州苗族繡繪") < page.index("Zhongguo Guizhou Miao zu xiu hui")
    assert client.get("/search.json?q=苗族").get_json()["hits"][0]["title_original"] == "中國貴州苗族繡繪"
    index.close()
