"""The contribution ledger (以贡献换服务) from real harvests and real reader clicks: records contributed,
original cataloguing (the earliest harvested member record of each entry), freshness, downloads and ILL
requests given and used; the consortium table sorts, downloads as CSV/JSON, each member has a page with
its monthly snapshots; the /go/ counting redirects count, land where the record page would, and are no
open redirect."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from dedupe.members import MemberStore
from marc_fixtures import iso2709, make_record
from staff_env import PASSWORD, login
from unioncat.cli import main
from unioncat.inprocess import InProcessRunner
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings
from web import create_app
from web.accounts import Accounts
from web.ledger_figures import stale
from web.ledger_store import FIGURES, LedgerSnapshots, ledger_monthly

ISBN = "9787100000011"


@pytest.fixture
def ledger_cat(tmp_path: Path):
    """lib-c is harvested first, a second later lib-a and lib-b: the shared book is lib-c's original."""
    sources = []
    own = {"lib-a": "Mountain birds of Yunnan", "lib-b": "Tax law in practice", "lib-c": "Silk weaving in Suzhou"}
    for member, title in own.items():
        recs = [make_record(f"{member}-1", title="The shared history of rivers", author="Wang, Li", isbn=ISBN),
                make_record(f"{member}-2", title=title, author="Zhao, Min", year="2011")]
        (tmp_path / f"{member}.mrc").write_bytes(b"".join(iso2709(r) for r in recs))
        sources.append({"id": member, "name": f"Library {member[-1].upper()}", "region": "Nanjing",
                        "protocol": "file", "path": f"{member}.mrc",
                        "opac_url": f"https://opac.{member}.example.edu.cn/record/{{local_id}}"})
    consortium = {"name": "T", "ill_url": "https://ill.example.org/request"}
    sources_path = tmp_path / "sources.yaml"
    sources_path.write_text(yaml.safe_dump({"consortium": consortium, "sources": sources}), encoding="utf-8")
    args = ["--sources", str(sources_path), "--data", str(tmp_path / "var")]
    assert CliRunner().invoke(main, [*args, "harvest", "lib-c"]).exit_code == 0
    time.sleep(1.1)  # first_seen has one-second resolution
    assert CliRunner().invoke(main, [*args, "harvest", "lib-a", "lib-b"]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "build"]).exit_code == 0
    cat = Catalogue(load_settings(env={}, sources_path=str(sources_path), data_dir=str(tmp_path / "var")))
    Accounts(cat.engine).add("viewer-1", PASSWORD, "viewer")
    try:
        yield cat
    finally:
        cat.close()


def _app(cat):
    return create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                       "SECRET_KEY": "t", "TESTING": True, "USAGE_FLUSH_SECONDS": 3600})


def _choose(client, library: str) -> None:
    import re
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    assert client.post("/library", data={"library": library, "csrf_token": token}).status_code in (302, 303)


def test_ledger_counts_what_members_give_and_use(ledger_cat):
    cat = ledger_cat
    shared = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    assert shared == MemberStore(cat.engine).cluster_of("lib-c", "lib-c-1")
    app = _app(cat)
    reader = app.test_client()
    _choose(reader, "lib-b")
    assert reader.get(f"/record/{shared}/export.mrc?member=lib-a:lib-a-1").status_code == 200  # given by lib-a
    assert reader.get(f"/record/{shared}/export.mrc?member=lib-b:lib-b-1").status_code == 200  # its own: not given
    ill = reader.get(f"/go/ill/{shared}")
    assert ill.status_code == 302 and ill.headers["Location"].startswith("https://ill.example.org/request?")

    staff = app.test_client()
    login(staff, "viewer-1")
    data = staff.get("/staff/ledger.json").get_json()
    rows = {r["member"]: r for r in data["members"]}
    assert {m: (r["contributed"], r["original"]) for m, r in rows.items()} == {
        "lib-a": (2, 1), "lib-b": (2, 1), "lib-c": (2, 2)}
    assert all(r["fresh_days"] == 0 for r in rows.values())
    assert rows["lib-a"]["downloaded_by_others"] == 1 and rows["lib-b"]["downloaded_by_others"] == 0
    assert rows["lib-b"]["downloads_used"] == 2 and rows["lib-b"]["ill_sent"] == 1
    assert {m: r["ill_could_fill"] for m, r in rows.items()} == {"lib-a": 1, "lib-b": 0, "lib-c": 1}
    assert data["totals"]["original"] == 4  # one original per catalogue entry

    page = staff.get("/staff/ledger").text
    assert "Contribution ledger" in page and "Library C" in page and 'aria-sort="descending"' in page
    by_original = staff.get("/staff/ledger.json?sort=original&order=desc").get_json()["members"]
    assert [r["member"] for r in by_original] == ["lib-c", "lib-a", "lib-b"]
    by_name = staff.get("/staff/ledger.json?sort=name").get_json()
    assert [r["member"] for r in by_name["members"]] == ["lib-a", "lib-b", "lib-c"] and not by_name["descending"]
    assert staff.get("/staff/ledger.json?sort=nonsense").get_json()["sort"] == "contributed"
    csv = staff.get("/staff/ledger.csv?sort=original")
    assert csv.mimetype == "text/csv"
    assert csv.text.splitlines()[0] == "member,name,region," + ",".join(FIGURES)
    assert csv.text.splitlines()[1].startswith("lib-c,Library C,Nanjing,2,2,0,")


def test_oai_harvesting_and_api_reads_count_as_given_by_each_holding_member(ledger_cat):
    """A harvester (no library) takes every record by OAI-PMH: each member's records served count as
    given; a lib-b reader's API read of the shared entry counts for lib-a and lib-c, not for lib-b."""
    import re
    from collections import Counter
    app = _app(ledger_cat)
    oai = app.test_client().get("/oai?verb=ListRecords&metadataPrefix=marcxml").text
    shares = Counter(re.findall(r"<setSpec>(?:library|members):([\w-]+)</setSpec>", oai))
    assert set(shares) == {"lib-a", "lib-b", "lib-c"} and shares["lib-c"] > 1
    reader = app.test_client()
    _choose(reader, "lib-b")
    shared = MemberStore(ledger_cat.engine).cluster_of("lib-a", "lib-a-1")
    assert reader.get(f"/api/v1/records/{shared}").status_code == 200
    staff = app.test_client()
    login(staff, "viewer-1")
    rows = {r["member"]: r for r in staff.get("/staff/ledger.json").get_json()["members"]}
    assert {m: r["downloaded_by_others"] for m, r in rows.items()} == {
        "lib-a": shares["lib-a"] + 1, "lib-b": shares["lib-b"], "lib-c": shares["lib-c"] + 1}
    assert all(r["downloads_used"] == 0 for r in rows.values())  # records served are not MARC downloads


def test_pages_read_the_snapshot_the_ledger_job_keeps_and_say_when_it_was_taken(ledger_cat, tmp_path):
    """With a snapshot, the pages show it (and its time) without computing; `unioncat ledger refresh` and
    the in-process runner's ledger job compute a new one; each month keeps its own row."""
    cat = ledger_cat
    snapshots = LedgerSnapshots(cat.engine)
    assert snapshots.taken_at() is None
    snapshots.save("2026-01", [{"member": "lib-c", **{f: 1 for f in FIGURES}}])
    staff = _app(cat).test_client()
    login(staff, "viewer-1")
    data = staff.get("/staff/ledger/lib-c.json").get_json()
    assert data["month"] == "2026-01" and not data["live"] and data["member"]["original"] == 1
    assert data["ranks"]["original"] == 1 and data["of"] == 3
    assert staff.get("/staff/ledger/lib-a.json").get_json()["member"]["original"] is None  # not in that snapshot
    page = staff.get("/staff/ledger").text
    assert "Figures as of" in page and "the snapshot of 2026-01" in page and "unioncat ledger refresh" in page
    args = ["--sources", str(cat.settings.sources_path), "--data", str(cat.settings.data_dir)]
    result = CliRunner().invoke(main, [*args, "ledger", "refresh"])
    assert result.exit_code == 0 and "members in" in result.output
    data = staff.get("/staff/ledger/lib-c.json").get_json()
    months = [h["month"] for h in data["history"]]
    assert data["month"] > "2026-01" and data["member"]["original"] == 2 and months == ["2026-01", data["month"]]
    page = staff.get("/staff/ledger/lib-c").text
    assert 'data-month="2026-01"' in page and "Gives" in page and "rank 1 of 3" in page
    assert staff.get("/staff/ledger/nobody").status_code == 404
    before = snapshots.taken_at()
    time.sleep(1.1)  # taken_at has one-second resolution
    runner = InProcessRunner(cat)
    try:
        runner.ledger(requested_by="test")
        runner.wait(60)
    finally:
        runner.close()
    assert snapshots.taken_at() > before and not stale(cat.engine)
    with cat.engine.connect() as conn:
        keys = conn.execute(select(ledger_monthly.c.month, ledger_monthly.c.member)).all()
    assert len(keys) == len(set(keys)) == 1 + 3
    assert "数据截至" in staff.get("/staff/ledger?lang=zh").text  # the time it was taken, in Chinese too


def test_without_a_snapshot_the_page_computes_one_and_keeps_it(ledger_cat):
    staff = _app(ledger_cat).test_client()
    login(staff, "viewer-1")
    first = staff.get("/staff/ledger.json").get_json()
    assert first["live"] and LedgerSnapshots(ledger_cat.engine).taken_at() is not None
    assert "computed for this page" not in staff.get("/staff/ledger").text  # the second view reads it
    assert not staff.get("/staff/ledger.json").get_json()["live"]


def test_ledger_needs_a_staff_session(ledger_cat):
    client = _app(ledger_cat).test_client()
    assert client.get("/staff/ledger").status_code == 302
    assert client.get("/staff/ledger.json").status_code == 401


def test_go_links_count_and_never_redirect_off_the_configuration(ledger_cat):
    cat = ledger_cat
    shared = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    app = _app(cat)
    client = app.test_client()
    page = client.get(f"/record/{shared}").text
    assert f'href="/go/opac/{shared}/lib-a?record=lib-a-1"' in page
    opac = client.get(f"/go/opac/{shared}/lib-a?record=lib-a-1")
    assert opac.status_code == 302 and opac.headers["Location"] == "https://opac.lib-a.example.edu.cn/record/lib-a-1"
    # a target in the request is never followed: an unknown copy falls back to the member's own link
    evil = client.get(f"/go/opac/{shared}/lib-a?record=https://evil.example/")
    assert evil.headers["Location"] == "https://opac.lib-a.example.edu.cn/record/lib-a-1"
    assert client.get(f"/go/opac/{shared}/lib-zz").status_code == 404
    assert client.get("/go/opac/no-such-entry/lib-a").status_code == 404
    assert client.get("/go/ill/no-such-entry").status_code == 404
    assert client.get(f"/go/opac/{shared}//evil.example", follow_redirects=True).status_code == 404
    app.extensions["unioncat_usage"].flush()
    staff = app.test_client()
    login(staff, "viewer-1")
    usage = staff.get("/staff/usage.json").get_json()
    assert usage["months"][0]["counts"]["opac_click"] == 2  # the two redirects that happened, no 404s
    assert {r["source"]: r["counts"]["opac_click"] for r in usage["holding"]} == {"lib-a": 2}


def test_go_ill_lands_on_site_for_a_relative_ill_service_and_refuses_other_schemes(ledger_cat):
    cat = ledger_cat
    shared = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")

    def app_with_ill(url):
        sources = replace(cat.sources, consortium=replace(cat.sources.consortium, ill_url=url))
        return create_app({"SOURCES": sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                           "SECRET_KEY": "t", "TESTING": True, "USAGE_FLUSH_SECONDS": 3600})
    client = app_with_ill("/ill/request").test_client()
    response = client.get(f"/go/ill/{shared}?year=2001")
    assert response.status_code == 302 and response.headers["Location"].startswith("/ill/request?")
    # the same request the record page would have linked to
    assert response.headers["Location"] == client.get(f"/record/{shared}.json?year=2001").get_json()["links"]["ill"]
    app = app_with_ill("javascript:alert(1)")
    assert app.test_client().get(f"/go/ill/{shared}").status_code == 404
    assert app.extensions["unioncat_usage"].totals() == {}  # a refused redirect is not counted
