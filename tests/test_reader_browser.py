"""The reader's catalogue in a real browser (Debian Chromium via Playwright) over the demo consortium.

One catalogue for the whole module: ``unioncat demo --no-serve`` builds the seven demo members from real
LoC records (one over OAI-PMH, one — a Huiwen library sending CNMARC — over Z39.50 from a real Zebra) plus
an eighth file member with a hostile ``<script>`` title and a Chinese novel catalogued with 880 parallel
script; Nanjing University signs its readers on through a real OpenID Connect provider (npm
``oidc-provider``, started by node on loopback).  Screenshots land in ``.cache/screenshots``.
"""
from __future__ import annotations

import io
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pymarc
import pytest
from click.testing import CliRunner
from marc_fixtures import make_record
from peers.oidc import OIDCProvider
from pymarc import Field, Indicators, Subfield

from browser import SCREENSHOTS, LiveServer
from unioncat.cli import main
from services import free_port
from peers.zebra import zebra_or_skip

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.loc
XSS_TITLE = "<script>document.title='pwned'</script> Hostile title"
NOVEL_ISBN = "9787020002207"


class Deferred:
    """A WSGI app set after the server starts: the provider needs our URL before the app can exist."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def extra_member(root: Path) -> None:
    """An eighth member: a hostile title and 红楼梦 (880 in traditional script, 245 romanised)."""
    hostile = make_record("x-1", title=XSS_TITLE, author="Mallory, <b>Eve</b>", year="2021")
    novel = make_record("x-2", title="Hong lou meng /", author="Cao, Xueqin", isbn=NOVEL_ISBN, year="1982", extra=[
        Field("880", Indicators("1", "0"), [Subfield("6", "245-01/$1"), Subfield("a", "紅樓夢 /")]),
        Field("880", Indicators("1", " "), [Subfield("6", "100-01/$1"), Subfield("a", "曹雪芹")]),
        Field("084", Indicators(" ", " "), [Subfield("a", "I242.4"), Subfield("2", "clc")]),
    ])
    novel["245"].add_subfield("6", "880-01", 0)
    # another edition of the same work (issue 16: grouped in results, "other editions" on the record page)
    reprint = make_record("x-3", title="Hong lou meng /", author="Cao, Xueqin", year="2010", extra=[
        Field("250", Indicators(" ", " "), [Subfield("a", "Di 3 ban.")]),
        Field("880", Indicators("1", "0"), [Subfield("6", "245-01/$1"), Subfield("a", "紅樓夢 /")]),
    ])
    reprint["245"].add_subfield("6", "880-01", 0)
    (root / "extra.mrc").write_bytes(hostile.as_marc() + novel.as_marc() + reprint.as_marc())


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """The demo catalogue served by a live server, with OIDC sign-on for Nanjing University Library."""
    zebra_or_skip()
    root = tmp_path_factory.mktemp("reader")
    cache = Path(os.environ.get("UNIONCAT_CACHE", REPO / ".cache"))
    app = Deferred()
    server = LiveServer(app)
    provider = OIDCProvider(redirect_uri=f"{server.url}/login/nju/oidc",
                            post_logout_redirect_uri=f"{server.url}/logout/done")
    try:
        port, zport = free_port(), free_port()
        text = (REPO / "sources.yaml").read_text(encoding="utf-8")
        text = text.replace("127.0.0.1:8081", f"127.0.0.1:{port}").replace("127.0.0.1:8210", f"127.0.0.1:{zport}")
        text = text.replace("""    opac_ids_stable: false
    schedule: daily
""", f"""    opac_ids_stable: false
    schedule: daily
    sign_on:
      type: oidc
      issuer: "{provider.issuer}"
      client_id: {provider.client_id}
      client_secret_env: NJU_OIDC_SECRET
      label: Nanjing University unified identity
""", 1)
        extra_member(root)
        text += """
  - id: extra
    name: Test Extra Library
    region: Wuxi
    protocol: file
    path: extra.mrc
    opac_url: "https://opac.extra.example.edu.cn/record/{local_id}"
"""
        (root / "sources.yaml").write_text(text, encoding="utf-8")
        result = CliRunner().invoke(main, ["--sources", str(root / "sources.yaml"), "--data", str(root / "var"),
                                           "demo", "--no-serve", "--records", "300", "--chinese", "40",
                                           "--oai-port", str(port), "--zebra-port", str(zport)],
                                    env={"UNIONCAT_CACHE": str(cache), "NJU_OIDC_SECRET": provider.client_secret},
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr

        from unioncat.pipeline import Catalogue
        from unioncat.present import make_app
        from unioncat.settings import load_settings
        cat = Catalogue(load_settings(env={"UNIONCAT_SECRET_KEY": "browser-tests"},
                                      sources_path=root / "sources.yaml", data_dir=root / "var"))
        os.environ["NJU_OIDC_SECRET"] = provider.client_secret
        try:
            app.app = make_app(cat)
        finally:
            del os.environ["NJU_OIDC_SECRET"]
        yield {"url": server.url, "cat": cat, "provider": provider}
        cat.close()
    finally:
        server.stop()
        provider.stop()


def search_json(catalogue, **params) -> dict:
    with catalogue_client(catalogue) as client:
        return client.get("/search.json", query_string=params).get_json()


def catalogue_client(catalogue):
    from unioncat.present import make_app
    return make_app(catalogue["cat"], use_open_index=True).test_client()


def held_by(catalogue, holder: str, not_holder: str) -> dict:
    """The result held by most libraries among those held by ``holder`` and not by ``not_holder``."""
    data = search_json(catalogue, f=f"library:{holder}")
    hits = [hit for hit in data["hits"] if not_holder not in {h["source"] for h in hit["holdings"]}]
    assert hits, f"no record held by {holder} and not by {not_holder}"
    return max(hits, key=lambda hit: hit["library_count"])


@contextmanager
def phone_page(browser, width: int, height: int):
    """A page in a fresh phone-sized touch context, closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True, has_touch=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def page_width(page, screen: int) -> tuple[int, list[str]]:
    """The page's scroll width and the first few elements reaching past ``screen`` pixels (for the message)."""
    wide = page.evaluate(f"""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > {screen + 1})
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    return page.evaluate("document.documentElement.scrollWidth"), wide


def tour(page, name: str) -> None:
    """A viewport-sized PNG for the README tour (docs/images holds copies of these)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"tour-{name}.png"))


def test_subject_facet_expands_then_filters(catalogue, page):
    """The subject facet is counted on request: its link counts it, and a chosen subject stays counted."""
    page.goto(catalogue["url"] + "/search?q=history")
    assert page.locator('section.facet[data-facet="subject"] li').count() == 0
    page.click('section.facet[data-facet="subject"] a.expand')
    subject = page.locator('section.facet[data-facet="subject"] li a').first
    name = subject.inner_text()
    subject.click()
    page.wait_for_selector("ul.chips")
    assert name in page.inner_text("ul.chips")
    assert page.locator('section.facet[data-facet="subject"] li.selected').inner_text().startswith(name)
    assert page.locator('section.facet[data-facet="subject"] a.expand').count() == 0


def test_search_pick_a_facet_open_a_record(catalogue, page):
    page.goto(catalogue["url"] + "/")
    page.fill("#q", "history")
    page.press("#q", "Enter")
    page.wait_for_selector("ol.hits li.hit")
    total = int(re.sub(r"\D", "", page.inner_text("#results-title")))
    assert total > 1
    assert page.locator("span.Z3988").count() >= 1  # COinS for Zotero
    assert "rft.btitle" in page.locator("span.Z3988").first.get_attribute("title")
    page.unioncat_screenshot("search-results")
    tour(page, "search")
    facet = page.locator('section.facet[data-facet="library"] li a').first
    facet_name = facet.inner_text()
    facet.click()
    page.wait_for_selector("ul.chips")
    assert facet_name in page.inner_text("ul.chips")
    narrowed = int(re.sub(r"\D", "", page.inner_text("#results-title")))
    assert 0 < narrowed <= total
    page.locator("ul.chips a").first.click()  # remove the filter again
    page.wait_for_selector("ol.hits")
    assert page.locator("ul.chips").count() == 0
    page.locator("ol.hits li.hit h2 a").first.click()
    page.wait_for_selector("#record-title")
    assert page.locator("table.holdings tbody.library").count() >= 1
    ld = json.loads(page.locator('script[type="application/ld+json"]').inner_text())
    assert ld["@context"] == "https://schema.org" and ld["name"]


def landing(page, href: str) -> str:
    """Where a /go/… counting redirect sends the reader (asked without following it)."""
    assert href.startswith("/go/"), href
    response = page.request.get(urljoin(page.url, href), max_redirects=0)
    assert response.status == 302
    return response.headers["location"]


def test_choose_library_turns_ill_into_opac_link(catalogue, page):
    hit = held_by(catalogue, "njnu", "suda")
    page.goto(catalogue["url"] + hit["url"])
    link = page.locator("#get-it")
    assert link.get_attribute("data-kind") == "ill"
    ill = landing(page, link.get_attribute("href"))  # through the counting redirect /go/ill/…
    assert ill.startswith("https://ill.example.org/openurl?")
    kev = parse_qs(urlsplit(ill).query)
    assert kev["url_ver"] == ["Z39.88-2004"] and kev["rfr_id"] == ["info:sid/unioncat.demo"] and kev["rft.btitle"]

    ask = page.locator("nav.actions >> text=Ask a librarian").get_attribute("href")
    assert ask.startswith("https://ask.example.org/?q=")  # the citation prefilled
    assert parse_qs(urlsplit(ask).query)["q"][0].endswith(hit["url"].rsplit("/", 1)[1])
    page.select_option("#library-select", "suda")  # a library that does not hold it: still ILL
    page.click(".choose-library button")
    page.wait_for_selector("#get-it")
    assert page.locator("#get-it").get_attribute("data-kind") == "ill"
    assert page.locator("table.holdings tbody.library").first.get_attribute("data-source") != "suda"

    page.select_option("#library-select", "njnu")  # the reader's library holds it: its OPAC record
    page.click(".choose-library button")
    page.wait_for_selector('#get-it[data-kind="opac"]')
    assert landing(page, page.locator("#get-it").get_attribute("href")).startswith("https://opac.njnu.example.edu.cn/record=")
    assert page.locator("table.holdings tbody.library").first.get_attribute("data-source") == "njnu"
    page.unioncat_screenshot("record-holdings")
    page.locator("#holdings-title").scroll_into_view_if_needed()
    tour(page, "record")
    page.goto(catalogue["url"] + "/")  # the choice is remembered in a cookie
    assert page.locator("#library-select").input_value() == "njnu"


def test_download_marc_and_parse_it_back(catalogue, page):
    hit = search_json(catalogue, q=NOVEL_ISBN)["hits"][0]
    page.goto(catalogue["url"] + hit["url"])
    with page.expect_download() as info:
        page.click("#export-mrc")
    data = Path(info.value.path()).read_bytes()
    (record,) = list(pymarc.MARCReader(io.BytesIO(data), to_unicode=True, force_utf8=True))
    assert record["001"].data == hit["id"]
    assert "Hong lou meng" in record["245"]["a"]
    assert any("(extra)x-2" in f["a"] for f in record.get_fields("035"))

    page.click("#add-to-basket")
    page.goto(catalogue["url"] + held_by(catalogue, "nju", "extra")["url"])
    page.click("#add-to-basket")
    page.goto(catalogue["url"] + "/basket")
    assert page.locator("ol.basket-items li").count() == 2
    with page.expect_download() as info:
        page.click("#basket-mrc")
    records = list(pymarc.MARCReader(io.BytesIO(Path(info.value.path()).read_bytes()), to_unicode=True,
                                     force_utf8=True))
    assert len(records) == 2 and records[0]["001"].data == hit["id"]


def test_cnmarc_member_record_and_original_unimarc(catalogue, page):
    cat = catalogue["cat"]
    cluster = next(c for c in cat.clusters.iter_live() if "njust" in c.sources)
    local_id = next(i for s, i in cluster.members if s == "njust")
    page.goto(f"{catalogue['url']}/record/{cluster.id}/member/njust/{local_id}")
    assert "UNIMARC" in page.inner_text("main")
    assert page.locator("table.marc-fields th", has_text="200").count() >= 1  # UNIMARC title field
    with page.expect_download() as info:
        page.click("text=original UNIMARC")
    original = Path(info.value.path()).read_bytes()
    assert original == cat.raw.get("njust", local_id).record.payload


def test_hostile_title_renders_inert(catalogue, page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(catalogue["url"] + "/search?q=Hostile")
    page.locator("ol.hits li.hit h2 a").first.click()
    page.wait_for_selector("#record-title")
    assert "<script>" in page.inner_text("#record-title")
    assert page.title() != "pwned" and not dialogs
    assert page.locator("main script").count() == 0
    assert "<b>Eve</b>" in page.inner_text("main")


@pytest.mark.parametrize("query", ["红楼梦", "紅樓夢", "hong lou meng", "ＨＯＮＧ ＬＯＵ ＭＥＮＧ"])
def test_chinese_queries_find_the_same_record(catalogue, page, query):
    page.goto(catalogue["url"] + "/")
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_selector("#results-title")
    titles = page.locator("ol.hits li.hit h2 a").all_inner_texts()
    assert any("紅樓夢" in t or "红楼梦" in t for t in titles), (query, titles)


def test_isbn_in_any_form_goes_to_its_record(catalogue, page):
    for form in ("978-7-02-000220-7", "702000220X", "7-02-000220-x", "９７８７０２０００２２０７"):
        page.goto(catalogue["url"] + "/")
        page.fill("#q", form)
        page.press("#q", "Enter")
        page.wait_for_selector("#record-title")
        # issue 16: the Han title is the heading, the romanisation beneath it
        assert page.inner_text("#record-title") == "紅樓夢"
        assert "Hong lou meng" in page.inner_text(".romanised-title")


def test_advanced_search_and_scope(catalogue, page):
    page.goto(catalogue["url"] + "/search?classification=i242")
    assert "Hong lou meng" in page.inner_text("ol.hits")
    hit = next(h for h in search_json(catalogue, q="history")["hits"] if any(x["call_number"] for x in h["holdings"]))
    call_number = next(x["call_number"] for x in hit["holdings"] if x["call_number"])
    exact = search_json(catalogue, callnumber=call_number.lower())
    assert hit["id"] in [h["id"] for h in exact["hits"]]
    prefix = search_json(catalogue, callnumber=call_number[:3])
    assert prefix["total"] >= exact["total"]
    page.goto(catalogue["url"] + "/search?q=hong+lou+meng")
    assert "CLC I" in page.inner_text('section.facet[data-facet="classification"]')
    page.goto(catalogue["url"] + "/search?q=history&scope=group:xianlin")
    scoped = search_json(catalogue, q="history", scope="group:xianlin")
    everything = search_json(catalogue, q="history")
    assert 0 < scoped["total"] <= everything["total"]
    assert all({h["source"] for h in hit["holdings"]} & {"nju", "njnu", "seu"} for hit in scoped["hits"])
    assert page.locator("#scope").input_value() == "group:xianlin"


def test_sign_in_through_the_real_oidc_provider(catalogue, page):
    hit = held_by(catalogue, "nju", "extra")
    page.goto(catalogue["url"] + hit["url"])
    page.click("header.site >> text=Sign in")
    page.click("text=Nanjing University unified identity")
    page.wait_for_url(re.compile(re.escape(catalogue["provider"].issuer)))
    page.fill('input[name="login"]', "lihua")
    page.fill('input[name="password"]', "any password")
    page.click('button[type="submit"]')
    page.click('button[type="submit"]:has-text("Continue")')  # the provider's consent page
    page.wait_for_url(re.compile(re.escape(catalogue["url"])))
    assert "Signed in as Reader lihua" in page.inner_text("header.site")
    assert "Nanjing University Library" in page.inner_text(".library-bar")
    assert page.locator("#get-it").get_attribute("data-kind") in ("opac", "held")
    page.click("text=Sign out")  # RP-initiated logout: the provider asks, then sends the reader back
    page.wait_for_url(re.compile(re.escape(catalogue["provider"].issuer) + "/session/end"))
    page.click('button[value="yes"]')
    page.wait_for_url(re.compile(re.escape(catalogue["url"] + hit["url"])))
    assert "Sign in" in page.inner_text("header.site")
    page.goto(catalogue["url"] + "/login/nju")  # the provider's session ended too: it asks for a login again
    page.wait_for_selector('input[name="login"]')


def test_chinese_ui_keyboard_and_mobile(catalogue, browser, page):
    page.goto(catalogue["url"] + "/search?q=history&lang=zh")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert "检索联合目录" in page.inner_text("main") and "家图书馆收藏" in page.inner_text("main")
    assert "图书馆" in page.inner_text("aside.facets")
    page.unioncat_screenshot("search-zh")
    page.goto(catalogue["url"] + "/search?q=%E4%B8%AD%E5%9B%BD&lang=zh")  # 中国
    tour(page, "chinese")
    page.goto(catalogue["url"] + "/basket?lang=en")  # keyboard: the first Tab reaches "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    with phone_page(browser, 390, 844) as mobile:
        mobile.goto(catalogue["url"] + "/search?q=history")
        width, wide = page_width(mobile, 390)
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px): {wide}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tour(mobile, "mobile")


# -- issue 16: search that forgives readers ---------------------------------------------------------------------

def test_misspelled_search_offers_did_you_mean_that_finds_the_book(catalogue, page):
    page.goto(catalogue["url"] + "/search?q=hong+lou+mneg")
    link = page.locator(".did-you-mean a")
    assert link.inner_text() == "hong lou meng"
    link.click()
    page.wait_for_selector("#results-title")
    assert parse_qs(urlsplit(page.url).query)["q"] == ["hong lou meng"]
    assert page.locator(".did-you-mean").count() == 0
    titles = page.locator("ol.hits li.hit h2 a").all_inner_texts()
    assert any("紅樓夢" in t for t in titles), titles


def test_autocomplete_by_keyboard(catalogue, page):
    page.goto(catalogue["url"] + "/search")
    first_is_the_novel = """() => { const o = document.querySelector('#q-suggestions [role=option]');
                                    return o !== null && /樓|楼/.test(o.textContent); }"""
    page.locator("#q").press_sequentially("honglou", delay=30)
    page.wait_for_function(first_is_the_novel)   # answers to shorter prefixes may show first on a slow machine
    assert page.get_attribute("#q", "aria-expanded") == "true"
    page.keyboard.press("ArrowDown")
    first = page.locator("#q-suggestions [role=option]").first
    assert first.get_attribute("aria-selected") == "true"
    assert page.get_attribute("#q", "aria-activedescendant") == first.get_attribute("id")
    assert "紅樓夢" in first.inner_text() or "红楼梦" in first.inner_text()
    page.keyboard.press("Escape")
    assert page.locator("#q-suggestions").is_hidden()
    page.locator("#q").press_sequentially("m", delay=30)
    page.wait_for_function(first_is_the_novel)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results-title")
    titles = page.locator("ol.hits li.hit h2 a").all_inner_texts()
    assert any("紅樓夢" in t for t in titles), titles


def test_author_link_searches_for_the_author(catalogue, page):
    page.goto(catalogue["url"] + f"/search?q={NOVEL_ISBN}")
    page.wait_for_selector("#record-title")
    assert page.inner_text("#record-title") == "紅樓夢"                     # Han heading …
    assert page.inner_text(".romanised-title") == "Hong lou meng"          # … romanisation beneath
    page.locator("a.author-link", has_text="Cao, Xueqin").click()
    page.wait_for_selector("#results-title")
    assert parse_qs(urlsplit(page.url).query)["author"] == ["Cao, Xueqin"]
    assert any("紅樓夢" in t for t in page.locator("ol.hits li.hit h2 a").all_inner_texts())


def test_record_page_fits_a_360px_phone(catalogue, browser):
    busiest = held_by(catalogue, "nju", "extra")
    with phone_page(browser, 360, 740) as phone:
        phone.goto(catalogue["url"] + f"/record/{busiest['id']}")
        width, wide = page_width(phone, 360)
        assert width <= 360, f"the record page scrolls sideways at 360px ({width}px): {wide}"
        # every holdings column is on screen: status and the OPAC link included
        for cell in phone.locator("table.holdings td[data-label]").all() + phone.locator("table.holdings td.link").all():
            box = cell.bounding_box()
            assert box is None or box["x"] + box["width"] <= 361, cell.inner_text()
        tour(phone, "record-phone")


def test_chinese_ui_shows_chinese_member_names(catalogue, page):
    page.goto(catalogue["url"] + "/search?lang=zh")
    facets = page.inner_text("aside.facets")
    assert "南京大学图书馆" in facets and "南京" in facets
    assert "Nanjing University Library" not in facets
    assert "江苏高校图书馆联盟" in page.inner_text("header")
    page.goto(catalogue["url"] + "/search?lang=en")
    assert "Nanjing University Library" in page.inner_text("aside.facets")


def test_grouped_work_expands(catalogue, page):
    page.goto(catalogue["url"] + "/search?q=hong+lou+meng")
    group = page.locator("li.hit details.work-editions").first
    summary = group.locator("summary")
    assert "2 editions" in summary.inner_text()
    assert not group.locator("ul").is_visible()
    summary.click()
    other = group.locator("ul li a").first
    assert other.is_visible()
    assert "2010" in group.inner_text() or "1982" in group.inner_text()
    other.click()
    page.wait_for_selector("#record-title")
    assert page.inner_text("#record-title") == "紅樓夢"
