"""The forgiving search as the reader meets it, without a browser: "Did you mean" on the page and in
``/search.json``; the dedupe evidence line on the record page only for staff."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from test_web import PASSWORD, _login, env, make_app  # noqa: F401  (test_web's module catalogue)


def test_misspelled_search_corrects_and_suggests(env):  # noqa: F811
    client = make_app(env).test_client()
    data = client.get("/search.json?q=hiatory+of+chnia").get_json()
    assert data["suggestion"] == "history of china" and data["corrected"] is True
    assert [h["id"] for h in data["hits"]] == ["c-en-china"]
    params = parse_qs(urlsplit(data["suggestion_url"]).query)
    assert params["q"] == ["history of china"]
    html = client.get("/search?q=hiatory+of+chnia&f=language:eng").text
    assert "Did you mean:" in html and "<strong>history of china</strong>" in html
    assert "/search?f=language:eng&amp;q=history+of+china" in html.split("did-you-mean")[1].split("</p>")[0]   # filters kept


def test_right_spelling_has_no_suggestion(env):  # noqa: F811
    data = make_app(env).test_client().get("/search.json?q=history+of+china").get_json()
    assert data["suggestion"] == "" and data["corrected"] is False and data["total"] == 1
    nothing = make_app(env).test_client().get("/search.json?q=zzzzqqqq").get_json()
    assert nothing["total"] == 0 and nothing["suggestion"] == "" and nothing["suggestion_url"] is None


def test_matched_on_line_is_for_staff_only(env):  # noqa: F811
    client = make_app(env, STAFF_PASSWORD=PASSWORD).test_client()
    assert "Matched on:" not in client.get("/record/c-en-china").text
    assert client.get("/record/c-en-china.json").get_json()["match_keys"] == []
    _login(client)
    assert "Matched on:" in client.get("/record/c-en-china").text
    assert client.get("/record/c-en-china.json").get_json()["match_keys"] == ["isbn"]


def test_chinese_heading_authors_subjects_and_other_editions(tmp_path):
    """A romanised 245 with its Han 880: the heading is the Han title, the romanisation beneath; authors and
    subjects link to searches for them; other editions say their format and year."""
    from consortium.load import parse_sources
    from dedupe.model import Cluster
    from dedupe.store import ClusterStore
    from index.documents import to_document
    from index.embedded import EmbeddedIndex
    from normaliser.model import Contributor, Holding, ParallelField, Record
    from storage.db import make_engine, sqlite_url
    from unioncat.schema import ensure_schema
    from web import create_app

    engine = make_engine(sqlite_url(tmp_path / "db.sqlite"))
    ensure_schema(engine)
    print_ed = Record(source="a", local_id="1", title="Hong lou meng", year=1982, format="book",
                      contributors=[Contributor("Cao, Xueqin", primary=True)], subjects=["Chinese fiction -- Qing dynasty"],
                      parallel=[ParallelField("245", "紅樓夢 / 曹雪芹著", "$1")], holdings=[Holding("a", "1")])
    ebook = Record(source="a", local_id="2", title="Hong lou meng", year=2015, format="ebook", holdings=[Holding("a", "2")])
    clusters = [Cluster(id="p1", record=print_ed, members=[("a", "1")], work_key="w:hlm"),
                Cluster(id="e1", record=ebook, members=[("a", "2")], work_key="w:hlm")]
    ClusterStore(engine).save(clusters)
    index = EmbeddedIndex(tmp_path / "ix")
    index.add([to_document(c, {"a": ("Library A", "Nanjing")}) for c in clusters])
    index.commit()
    sources = parse_sources({"consortium": {"name": "C"}, "sources": [
        {"id": "a", "name": "Library A", "region": "Nanjing", "protocol": "file", "path": "x.mrc"}]}, tmp_path / "s.yaml")
    client = create_app({"SOURCES": sources, "DB_ENGINE": engine, "SEARCH_BACKEND": index}).test_client()
    page = client.get("/record/p1").text
    assert '<h1 id="record-title"><span lang="zh">紅樓夢</span></h1>' in page
    assert '<p class="romanised-title">Hong lou meng</p>' in page
    assert 'href="/search?author=Cao,+Xueqin"' in page
    assert 'href="/search?subject=Chinese+fiction+--+Qing+dynasty"' in page
    editions = page.split('id="editions-title"')[1].split("</section>")[0]
    assert "E-book" in editions and "2015" in editions, editions
    found = client.get("/search.json?subject=Chinese+fiction+--+Qing+dynasty").get_json()
    assert [h["id"] for h in found["hits"]] == ["p1"]
    assert [h["id"] for h in client.get("/search.json?author=Cao,+Xueqin").get_json()["hits"]] == ["p1"]
    # the two editions of the work are one result (grouped by the engine), the other edition (format, year) inside it
    grouped = client.get("/search.json?q=hong+lou+meng").get_json()
    assert grouped["total"] == 1 and grouped["records"] == 2 and not grouped["total_is_estimate"]
    assert len(grouped["hits"]) == 1 and len(grouped["works"]) == 1
    head = grouped["works"][0]
    assert [(e["id"], e["format"], e["year"]) for e in head["editions"]] == [("e1" if head["id"] == "p1" else "p1",
                                                                              *(("ebook", 2015) if head["id"] == "p1"
                                                                                else ("book", 1982)))]
    assert sorted(head["formats"]) == ["book", "ebook"]
    html = client.get("/search?q=hong+lou+meng").text
    assert '<details class="work-editions">' in html and "2 editions / 2 formats" in html
    index.close()


def test_suggest_json(env):  # noqa: F811
    client = make_app(env).test_client()
    data = client.get("/suggest.json?q=histor").get_json()
    assert data["q"] == "histor"
    assert data["suggestions"][0] == {"text": "The history of China: an introduction", "kind": "title",
                                      "id": "c-en-china", "url": "/search?q=The+history+of+China:+an+introduction"}
    han = client.get("/suggest.json?q=紅樓").get_json()["suggestions"]
    assert [s["text"] for s in han if s["kind"] == "title"] in (["红楼梦"], ["紅樓夢"])   # one, whichever script
    author = client.get("/suggest.json?q=smith").get_json()["suggestions"]
    assert author == [{"text": "Smith, John", "kind": "author", "id": None, "url": "/search?author=Smith,+John"}]
    assert client.get("/suggest.json?q=h").get_json()["suggestions"] == []
    assert client.get("/suggest.json?q=" + "x" * 3000).status_code == 200
    assert client.get("/suggest.json?q=" + "x" * 5000).status_code == 400     # over the URL cap (issue 19)
    assert len(client.get("/suggest.json?q=hong&limit=1").get_json()["suggestions"]) <= 1
    page = client.get("/search").text
    assert 'id="q-suggestions"' in page and "/static/suggest.js" in page and 'data-endpoint="/suggest.json"' in page


def test_suggest_has_its_own_rate_limit(env):  # noqa: F811
    app = make_app(env)
    app.config.update(SUGGEST_RATE=0.01, SUGGEST_BURST=3)
    client = app.test_client()
    codes = [client.get("/suggest.json?q=histor").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert client.get("/search.json?q=history").status_code == 200          # searching keeps its own allowance


def test_back_to_results_and_previous_next(env):  # noqa: F811
    client = make_app(env).test_client()
    assert 'class="result-nav"' not in client.get("/record/c-en-china").text      # no search yet: no bar
    page = client.get("/search?f=language:eng&sort=title").text
    ids = [a.split('"')[0] for a in page.split('<h2 class="title"><a href="/record/')[1:]]
    assert len(ids) >= 3
    record = client.get(f"/record/{ids[1]}").text
    nav = record.split('class="result-nav"')[1].split("</nav>")[0]
    assert "Back to results" in nav and "/search?f=language:eng&amp;sort=title" in nav
    assert f'href="/record/{ids[0]}?pos=0" rel="prev"' in nav and f'href="/record/{ids[2]}?pos=2" rel="next"' in nav
    first = client.get(f"/record/{ids[0]}").text.split('class="result-nav"')[1].split("</nav>")[0]
    assert 'rel="prev"' not in first and f"/record/{ids[1]}?pos=1" in first
    assert client.get(f"/record/{ids[0]}?pos=x").status_code == 200               # edited URLs never fail
    assert client.get(f"/record/c-zh-history?pos=99999").status_code == 200
    client.get("/search?q=zzzzqqqq")                                              # a new search replaces it
    assert 'class="result-nav"' not in client.get(f"/record/{ids[0]}").text
