"""The data centre in a real Chromium: the overview with 130 members from a generated sources.yaml and a
year of daily runs (filter to the failing members of one region, sort by lag, open one, act on it from its
actions menu), and the usage chart showing the counts of the test's own searches and downloads."""
from __future__ import annotations

from console_env import fill_runs, is_failing, member_id, region_of, write_sources
from dedupe.members import MemberStore
from staff_env import PASSWORD
from test_staff_dedupe import merged  # noqa: F401 - fixture
from unioncat.inprocess import InProcessRunner
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings
from web import create_app
from web.accounts import Accounts

MEMBERS = 130


def test_filter_sort_open_and_act_at_130_members(tmp_path, page, live_server):
    path = write_sources(tmp_path, MEMBERS)
    cat = Catalogue(load_settings(env={}, sources_path=str(path), data_dir=str(tmp_path / "var")))
    fill_runs(cat.engine, MEMBERS, 365)
    Accounts(cat.engine).add("operator-1", PASSWORD, "operator")
    runner = InProcessRunner(cat)
    try:
        base = live_server(create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                                       "JOBS": runner, "SECRET_KEY": "t", "TESTING": True}))
        page.goto(base + "/staff/")
        page.fill("#username", "operator-1")
        page.fill("#password", PASSWORD)
        page.click(".login button[type=submit]")
        page.wait_for_selector("h1#status-title")
        assert page.locator("table.status tbody tr").count() == 50  # one compact page, not 130 tall rows
        assert "Page 1 of 3" in page.locator("nav.pager").inner_text()

        page.select_option("form.filters select[name=state]", "failing")
        page.select_option("form.filters select[name=region]", "Xuzhou")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**state=failing**")  # count() below does not wait for the page the click opens
        expected = {member_id(i) for i in range(MEMBERS) if is_failing(i) and region_of(i) == "Xuzhou"}
        rows = page.locator("table.status tbody tr")
        assert {rows.nth(n).get_attribute("data-source") for n in range(rows.count())} == expected
        assert all("failing" in rows.nth(n).locator(".state").inner_text() for n in range(rows.count()))

        page.click("th a.sort:has-text('Freshness lag')")  # ascending, then descending
        page.click("th a.sort:has-text('Freshness lag')")
        assert "dir=desc" in page.url and "state=failing" in page.url and "region=Xuzhou" in page.url
        first = rows.first.get_attribute("data-source")
        assert first == max(expected, key=lambda m: 1 + int(m[1:]) % 7)  # the oldest success lags most
        rows.first.locator("svg.spark circle").last.hover()
        page.screenshot(path=str(tmp_path / "console.png"))

        rows.first.locator("details.menu summary").click()
        rows.first.locator("button.pause").click()
        assert f"{first} paused" in page.locator(".flash-ok").inner_text()
        assert "state=failing" in page.url and "sort=lag" in page.url  # back to the same filtered view
        assert page.locator(f"tr[data-source={first}]").count() == 0  # paused now, so no longer "failing"
        page.fill("form.filters input[name=q]", first)
        page.select_option("form.filters select[name=state]", "")
        page.click("form.filters button[type=submit]")
        assert "paused" in page.locator(f"tr[data-source={first}] .state").inner_text()
        page.locator(f"tr[data-source={first}] th a").click()
        assert "pause" in page.locator("ul.audit").inner_text()
        page.goto(base + "/staff/?state=failing&region=Xuzhou&sort=lag&dir=desc")
        page.unioncat_screenshot("staff-console")
    finally:
        runner.close()
        cat.close()


def download(page, url: str) -> None:
    """Download ``url`` as a reader's browser does (a link with ``download``), checking a MARC file came."""
    with page.expect_download() as started:
        page.evaluate("url => { const a = document.createElement('a'); a.href = url; a.download = ''; "
                      "document.body.appendChild(a); a.click(); }", url)
    assert started.value.suggested_filename.endswith(".mrc")


def sign_in(page, url: str) -> None:
    """Open a staff page and sign in as viewer-1 on the form it redirects to."""
    page.goto(url)
    page.fill("#username", "viewer-1")
    page.fill("#password", PASSWORD)
    page.click(".login button[type=submit]")


def test_usage_chart_shows_the_tests_own_searches_and_downloads(merged, page, live_server):  # noqa: F811
    cat, _args = merged
    entry = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    base = live_server(create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                                   "SECRET_KEY": "t", "TESTING": True, "USAGE_FLUSH_SECONDS": 3600}))
    for q in ("rivers", "silk", "tax"):
        page.goto(f"{base}/search?q={q}")
    page.goto(f"{base}/record/{entry}")
    download(page, f"{base}/record/{entry}/export.mrc")
    sign_in(page, base + "/staff/usage")
    page.wait_for_selector("h1#usage-title")
    month = page.locator("table.usage.months tbody tr").first
    assert month.locator("td[data-event=search] .n").inner_text() == "3"
    assert month.locator("td[data-event=record_view] .n").inner_text() == "1"
    assert month.locator("td[data-event=download] .n").inner_text() == "1"
    assert month.locator("td[data-event=search] svg.bar rect").get_attribute("width") == "60.0"  # the peak
    assert entry in page.locator("ol.top-records").inner_text()
    page.unioncat_screenshot("staff-usage")

    page.click("nav.staff-nav >> text=Overlap")  # the collection overlap heatmap renders
    page.wait_for_selector("table.heatmap tbody tr")  # count() does not wait for the page the click opens
    heat = page.locator("table.heatmap tbody tr")
    assert heat.count() == 3
    assert heat.first.locator("td").all_inner_texts() == ["2", "1", "1"]
    assert heat.first.locator("td.heat-self").count() == 1 and heat.first.locator("td.heat-4").count() == 2
    page.unioncat_screenshot("staff-overlap")


def test_ledger_renders_sorts_and_opens_a_member(merged, page, live_server):  # noqa: F811
    cat, _args = merged
    entry = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    base = live_server(create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                                   "SECRET_KEY": "t", "TESTING": True, "USAGE_FLUSH_SECONDS": 3600}))
    page.goto(f"{base}/record/{entry}")
    download(page, f"{base}/record/{entry}/export.mrc?member=lib-b:lib-b-1")  # a reader of no known library
    sign_in(page, base + "/staff/ledger")
    page.wait_for_selector("h1#ledger-title")
    rows = page.locator("table#ledger tbody tr")
    assert rows.count() == 3
    assert page.locator("table#ledger tfoot td").first.inner_text() == "6"  # 2 records from each member
    page.click("th[data-column=downloaded_by_others] a")  # sort: the member whose record was downloaded first
    page.wait_for_selector("th[data-column=downloaded_by_others][aria-sort=descending]")
    assert rows.first.get_attribute("data-source") == "lib-b"
    assert rows.first.locator("td[data-figure=downloaded_by_others]").inner_text() == "1"
    rows.first.locator("th a").click()
    page.wait_for_selector("table#ledger-history")
    assert page.locator("dd[data-figure=contributed]").inner_text().startswith("2")
    assert page.locator("table#ledger-history tbody tr").count() == 1  # this month's snapshot
    page.unioncat_screenshot("staff-ledger-member")
