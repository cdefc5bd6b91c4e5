"""The sources overview at 130 members with a year of daily runs: filter by state, region and group,
search by id or (Chinese) name, sort by any column, page; status.json answers the same query; actions
are disabled with the reason when no job runner is configured; sparklines carry a scale and tooltips."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from console_env import fill_runs, is_failing, member_id, region_of, write_sources
from staff_env import PASSWORD, login
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings
from web import create_app
from web.accounts import Accounts
from web.console import SORTS

MEMBERS = 130


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("console")
    path = write_sources(folder, MEMBERS)
    cat = Catalogue(load_settings(env={}, sources_path=str(path), data_dir=str(folder / "var")))
    fill_runs(cat.engine, MEMBERS, 365)
    accounts = Accounts(cat.engine)
    accounts.add("viewer-1", PASSWORD, "viewer")
    accounts.add("operator-1", PASSWORD, "operator")
    try:
        yield cat
    finally:
        cat.close()


@pytest.fixture
def client(consortium):
    app = create_app({"SOURCES": consortium.sources, "DB_ENGINE": consortium.engine,
                      "SEARCH_BACKEND": consortium.index, "SECRET_KEY": "t", "TESTING": True})
    c = app.test_client()
    login(c, "operator-1")
    return c


def test_filter_failing_members_of_one_region(client):
    data = client.get("/staff/status.json?state=failing&region=Suzhou&per_page=500").get_json()
    expected = sorted(member_id(i) for i in range(MEMBERS) if is_failing(i) and region_of(i) == "Suzhou")
    assert expected and sorted(r["id"] for r in data["sources"]) == expected
    assert all(r["health"]["failures_in_a_row"] == 3 for r in data["sources"])
    assert data["view"]["matching"] == len(expected) and data["totals"]["sources"] == MEMBERS
    assert data["facets"]["states"]["failing"] == sum(is_failing(i) for i in range(MEMBERS))
    page = client.get("/staff/?state=failing&region=Suzhou").text
    assert sorted(re.findall(r'data-source="(m\d+)"', page)) == expected


def test_every_column_sorts_both_ways_and_lag_is_ordered(client):
    for column in SORTS:
        for direction in ("", "desc"):
            response = client.get(f"/staff/status.json?sort={column}&dir={direction}&per_page=500")
            assert response.status_code == 200 and len(response.get_json()["sources"]) == MEMBERS, column
    rows = client.get("/staff/status.json?sort=lag&dir=desc&per_page=500").get_json()["sources"]
    lags = [r["health"]["lag_s"] for r in rows]
    assert lags == sorted(lags, reverse=True) and lags[0] > lags[-1]
    page = client.get("/staff/?sort=lag&dir=desc").text
    assert 'aria-sort="descending"' in page and "Freshness lag ▼" in page


def test_search_by_id_or_chinese_name_group_and_paging(client):
    found = client.get("/staff/status.json?q=苏州大学").get_json()["sources"]
    assert found and all("苏州大学" in r["name"] for r in found)
    assert [r["id"] for r in client.get("/staff/status.json?q=M0042").get_json()["sources"]] == ["m0042"]
    group = client.get("/staff/status.json?group=medical&per_page=500").get_json()
    assert sorted(r["id"] for r in group["sources"]) == [member_id(i) for i in range(1, MEMBERS, 10)]
    pages = [client.get(f"/staff/status.json?per_page=25&page={n}").get_json() for n in range(1, 7)]
    assert [len(p["sources"]) for p in pages] == [25, 25, 25, 25, 25, 5] and pages[0]["view"]["pages"] == 6
    assert len({r["id"] for p in pages for r in p["sources"]}) == MEMBERS
    html = client.get("/staff/?per_page=25&page=2").text
    assert "Page 2 of 6" in html and len(re.findall(r'<tr class="attention-', html)) == 25
    assert 'rel="next"' in html and 'rel="prev"' in html


def test_bad_query_is_explained_not_an_error(client):
    data = client.get("/staff/status.json?sort=colour&state=sleepy&group=nosuch&page=x").get_json()
    assert data["view"]["problems"] == ["unknown state 'sleepy'", "cannot sort by 'colour'", "unknown group 'nosuch'"]
    assert "cannot sort by" in client.get("/staff/?sort=colour").text


def test_actions_are_disabled_with_the_reason_without_a_job_runner(client):
    page = client.get("/staff/?q=m0001").text
    harvest = re.search(r'<button type="submit" class="harvest-now"([^>]*)>', page).group(1)
    assert "disabled" in harvest and "No job runner is configured" in harvest
    assert re.search(r'<button type="submit" class="pause">', page)  # pausing needs no runner


def test_sparkline_has_a_scale_and_a_tooltip_per_point(client):
    page = client.get("/staff/?q=m0002").text
    svg = re.search(r'<svg class="spark.*?</svg>', page, re.S).group(0)
    assert svg.count("<circle") == 20 and "run 20 of 20:" in svg
    assert 'class="scale-high"' in svg and 'class="scale-low"' in svg and "lowest" in svg


def test_the_per_member_run_queries_read_the_newest_rows(consortium):
    """record_trend / last_runs / success_streaks seek per member (bench/staff.py); same answers as a scan."""
    days = 365
    trend = consortium.raw.record_trend(20)
    assert len(trend) == MEMBERS
    for i in (0, 2, 9, 129):
        runs = days + (3 if is_failing(i) else 0)
        assert trend[member_id(i)] == [1000 + 3 * d + i for d in range(runs - 20, runs)]
    last = consortium.raw.last_runs()
    assert len(last) == MEMBERS and last["m0009"]["status"] == "failed" and last["m0010"]["status"] == "ok"
    from harvester.stores.runs import RunStore
    last_ok, failures = RunStore(consortium.engine).success_streaks()
    assert len(last_ok) == MEMBERS and failures == {member_id(i): 3 for i in range(MEMBERS) if is_failing(i)}
    assert last_ok["m0010"] - last_ok["m0011"] == timedelta(days=1)  # 1 + 10 % 7 = 4 days old, against 5


def test_a_run_that_starts_or_ends_shows_at_once_despite_the_cache(consortium, client):
    """The overview reuses its run figures for STATUS_CACHE_SECONDS (15) only while no run changed."""
    from harvester.stores.records import Counts
    from harvester.stores.runs import RunStore
    runs = RunStore(consortium.engine)
    before = client.get("/staff/status.json?q=m0001").get_json()["sources"][0]
    assert before["attention"] != "failing" and before["last_run"]["status"] == "ok"
    run_id = runs.start_run("m0001", "file", True, None)
    assert client.get("/staff/status.json?q=m0001").get_json()["sources"][0]["last_run"]["status"] == "running"
    runs.finish_run(run_id, "failed", Counts(), error="HTTP 503 Service Unavailable (gave up after 3 attempts)")
    after = client.get("/staff/status.json?q=m0001").get_json()["sources"][0]
    assert after["attention"] == "failing" and after["last_run"]["error"].startswith("HTTP 503")
    assert "HTTP 503 after 3 tries" in client.get("/staff/?q=m0001").text  # the readable line, raw one click away


def test_alerts_are_one_banner_per_kind_with_a_link_to_the_filter(client):
    """At 130 members ~100 alerts hold: the page names five per kind and links to the rest."""
    data = client.get("/staff/status.json").get_json()
    failing = [a for a in data["alerts"] if a["kind"] == "failing"]
    assert len(failing) == sum(is_failing(i) for i in range(MEMBERS)) > 5  # the JSON keeps every alert
    page = client.get("/staff/").text
    banners = re.findall(r'<p class="banner banner-(\w+)" role="alert">(.*?)</p>', page, re.S)
    assert sorted(kind for kind, _ in banners) == sorted({a["kind"] for a in data["alerts"]})
    text = dict(banners)["failing"]
    assert text.count("harvests failed") == 5 and f"and {len(failing) - 5} more" in text
    assert 'href="/staff/?state=failing"' in text


def test_the_page_draws_trends_for_its_own_rows_only(consortium, client):
    """Sparklines come from record_trend(sources=…) for the page shown; same counts as the full read."""
    page = client.get("/staff/status.json?per_page=10&sort=name").get_json()["sources"]
    every = consortium.raw.record_trend(20)
    assert [r["trend"] for r in page] == [every[r["id"]] for r in page]
    assert consortium.raw.record_trend(20, [page[0]["id"], "nobody"]) == {page[0]["id"]: every[page[0]["id"]]}
    assert consortium.raw.record_trend(20, []) == {}


def test_staff_pages_leave_out_the_readers_library_chooser_and_speak_chinese(client):
    assert 'id="library-select"' not in client.get("/staff/").text
    assert 'id="library-select"' in client.get("/").text
    page = client.get("/staff/?q=m0002&lang=zh").text
    svg = re.search(r'<svg class="spark.*?</svg>', page, re.S).group(0)
    assert "第 20 次运行(共 20 次)" in svg and "最近 20 次运行后的记录数" in svg
    assert "另有" in page and "全部列出" in page
