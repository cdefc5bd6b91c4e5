"""Usage statistics from real requests: searches, record views, downloads, basket exports, OAI-PMH and API
records are counted per day, per reader's library and per holding library; the staff page, its JSON and
CSV and /metrics show them; the table has no column that could hold an IP or a reader, and no value of
one; counting off counts nothing."""
from __future__ import annotations

import re
import time
from collections import Counter

from sqlalchemy import create_engine, inspect, select

from dedupe.members import MemberStore
from staff_env import login
from test_staff_dedupe import merged  # noqa: F401 - the fixture: three members, one book held by all
from web import create_app
from web.usage_store import UsageCounter, usage_daily


def _app(cat, **config):
    return create_app({"SOURCES": cat.sources, "DB_ENGINE": cat.engine, "SEARCH_BACKEND": cat.index,
                       "SECRET_KEY": "t", "TESTING": True, "USAGE_FLUSH_SECONDS": 3600, **config})


def _reader_traffic(client, entry: str) -> str:
    """What the test expects to be counted: 3 searches, 2 views, 2 downloads, 1 basket export of 1 record,
    1 API record and the OAI-PMH records of one ListRecords (its text is returned)."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/basket").text).group(1)
    chosen = client.post("/library", data={"library": "lib-b", "csrf_token": token})  # the reader's library
    assert chosen.status_code in (302, 303)
    for q in ("rivers", "history", "Tax law"):
        assert client.get(f"/search?q={q}").status_code == 200
    client.get("/search")  # the home page with no query is not a search
    for _ in range(2):
        assert client.get(f"/record/{entry}").status_code == 200
    assert client.get(f"/record/{entry}/export.mrc?member=lib-a:lib-a-1").status_code == 200
    assert client.get(f"/record/{entry}/export.xml").status_code == 200
    assert client.get(f"/record/{entry}/export.mrc?member=lib-a:nope").status_code == 404  # not counted
    assert client.post("/basket/add", data={"id": entry, "csrf_token": token}).status_code == 303
    assert client.get("/basket/export.mrc").status_code == 200
    assert client.get(f"/api/v1/records/{entry}").status_code == 200
    oai = client.get("/oai?verb=ListRecords&metadataPrefix=marcxml")
    assert oai.status_code == 200
    return oai.text


def _holders(oai_text: str) -> Counter:
    """member → records of it in an OAI-PMH answer, from the headers' sets (library:… merged, members:… its own)."""
    return Counter(re.findall(r"<setSpec>(?:library|members):([\w-]+)</setSpec>", oai_text))


def test_counts_from_real_requests_per_day_member_and_record(merged):  # noqa: F811
    cat, _args = merged
    entry = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    app = _app(cat)
    reader = app.test_client()
    oai_text = _reader_traffic(reader, entry)
    oai_records, shares = oai_text.count("<record>"), _holders(oai_text)
    assert oai_records > 0 and set(shares) == {"lib-a", "lib-b", "lib-c"}
    staff = app.test_client()
    login(staff, "viewer-1")
    data = staff.get("/staff/usage.json").get_json()
    (month,) = data["months"]
    assert month["counts"] == {"search": 3, "record_view": 2, "download": 2, "basket_export": 1,
                               "oai_record": oai_records, "api_record": 1, "opac_click": 0, "ill_request": 0}
    holding = {r["source"]: r["counts"] for r in data["holding"]}
    # per holding library: its records served by OAI-PMH and the API (the entry read is held by all three)
    served = {m: {**{e: 0 for e in data["events"]}, "oai_record": shares[m], "api_record": 1} for m in shares}
    assert holding == {**served, "lib-a": {**served["lib-a"], "download": 1}}
    readers = {r["source"]: r["total"] for r in data["readers"]}
    assert readers == {"lib-b": 3 + 2 + 2 + 1 + oai_records + 1}
    assert data["top_records"] == [{"record": entry, "count": 5}]  # 2 views, 2 downloads, 1 API record
    page = staff.get("/staff/usage").text
    assert "Library B" in page and f'data-month="{month["month"]}"' in page and "<svg class=\"bar\"" in page
    csv = staff.get("/staff/usage.csv")
    assert csv.mimetype == "text/csv"
    assert csv.text.splitlines()[0] == "day,event,reader_library,holding_library,record,count"
    metrics = staff.get("/metrics").text
    assert 'unioncat_usage_events_total{event="search"} 3.0' in metrics
    assert f'unioncat_usage_events_total{{event="oai_record"}} {float(oai_records)}' in metrics


def test_the_table_cannot_hold_an_ip_or_a_reader(merged):  # noqa: F811
    cat, _args = merged
    entry = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    app = _app(cat)
    client = app.test_client()
    _reader_traffic(client, entry)
    app.extensions["unioncat_usage"].flush()
    columns = {c["name"] for c in inspect(cat.engine).get_columns("usage_daily")}
    assert columns == {"id", "day", "event", "reader_library", "holding_library", "record", "count"}
    with cat.engine.connect() as conn:
        rows = conn.execute(select(usage_daily)).mappings().all()
    assert rows
    values = {str(v) for r in rows for k, v in r.items() if k not in ("id", "day", "count")}
    assert values <= {"", "lib-a", "lib-b", "lib-c", entry, "search", "record_view", "download", "basket_export",
                      "oai_record", "api_record", "oai_held", "api_held"}
    assert not any("127.0.0.1" in v or "session" in v for v in values)


def test_counting_switched_off_counts_nothing(merged):  # noqa: F811
    cat, _args = merged
    entry = MemberStore(cat.engine).cluster_of("lib-a", "lib-a-1")
    app = _app(cat, USAGE_STATISTICS=False)
    _reader_traffic(app.test_client(), entry)
    staff = app.test_client()
    login(staff, "operator-1")
    data = staff.get("/staff/usage.json").get_json()
    assert data["enabled"] is False and data["months"] == [] and data["daily"] == []
    assert "Counting is switched off" in staff.get("/staff/usage").text


def test_batched_counts_are_written_by_the_background_thread(merged):  # noqa: F811
    cat, _args = merged
    app = _app(cat, USAGE_FLUSH_SECONDS=0.2)
    client = app.test_client()
    client.get("/search?q=rivers")
    import time
    deadline = time.monotonic() + 10
    while True:
        with cat.engine.connect() as conn:
            n = conn.execute(select(usage_daily.c.count).where(usage_daily.c.event == "search")).scalar()
        if n == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert n == 1


def test_a_database_outage_is_logged_once_and_loses_no_counts(tmp_path, caplog):
    gone = create_engine(f"sqlite:///{tmp_path}/missing/dir/usage.db")   # no such folder: every write fails
    counter = UsageCounter(gone, interval=0.05)
    try:
        with caplog.at_level("DEBUG", logger="web.usage_store"):
            counter.count("search")
            time.sleep(0.5)                                                  # several failed flushes
        warnings = [r for r in caplog.records if r.levelname == "WARNING" and "writing the counts" in r.message]
        assert len(warnings) == 1
        assert counter.totals() == {"search": 1}                             # kept for the next try
    finally:
        counter._stop.set()
