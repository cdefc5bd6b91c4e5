"""Z39.50 and SRU harvesting against a real Zebra server on loopback (through YAZ's ZOOM C API).

Faults Zebra cannot produce on demand (a server that accepts and never answers) come from a plain
socket server of our own; a refused port is a port nobody listens on.  Nothing is mocked.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pymarc import MARCReader

from consortium.config import Source
from harvester.ops import OpsStore
from harvester.harvest import harvest_source
from harvester.run import HarvestProgress
from harvester.store import RawStore
from publish.zebra_server import free_port
from peers.zebra import SilentServer, bib, unimarc_gbk, write_mrc, zebra  # noqa: F401 - zebra is a fixture

ALL = '@attr 1=_ALLRECORDS @attr 2=103 ""'


def z_source(url: str, **kw) -> Source:
    options = {k: kw.pop(k) for k in list(kw) if k not in Source.__dataclass_fields__}
    settings = dict(id="zmember", name="Z member", region="East", protocol="z3950", url=url, timeout=5.0,
                    max_retries=0, retry_after_max=0.05, options={"query": ALL, "batch_size": 7, **options})
    settings.update(kw)
    return Source(**settings)


def sru_source(url: str, **kw) -> Source:
    settings = dict(protocol="sru", id="srumember", query="cql.allRecords=1", record_schema="marcxml")
    return z_source(url, **{**settings, **kw})


def ids(store: RawStore, source: str = "zmember", deleted: bool = False) -> list[str]:
    return store.local_ids(source, include_deleted=deleted)


def test_full_harvest_takes_every_record(zebra, store):
    server = zebra([bib(n) for n in range(1, 31)])
    pages = []
    report = harvest_source(z_source(server.url), store, progress=pages.append)
    assert report.ok, report.error
    assert report.counts.added == 30 and store.count("zmember") == 30
    assert len(pages) == 5  # 30 records in batches of 7
    row = store.get("zmember", "rec00007")
    assert row.record.syntax == "iso2709" and row.record.datestamp == "20240101120000.0"
    assert next(MARCReader(row.record.payload, to_unicode=True))["245"]["a"] == "Title 7"
    # a second full harvest: everything unchanged, nothing deleted
    again = harvest_source(z_source(server.url), store, full=True)
    assert again.ok and again.counts.unchanged == 30 and again.counts.deleted == 0


def test_marcxml_records_and_a_list_of_queries(zebra, store):
    server = zebra([bib(n, year=1990 + n % 3) for n in range(1, 13)], record_type="xml")
    queries = [f"@attr 1=31 @attr 4=109 {y}" for y in (1990, 1991, 1992)]
    report = harvest_source(z_source(server.url, query=queries, syntax="xml", element_set="marcxml"), store)
    assert report.ok, report.error
    assert store.count("zmember") == 12
    row = store.get("zmember", "rec00005")
    assert row.record.syntax == "marcxml" and row.record.payload.startswith(b"<record")


def test_incremental_by_date_last_modified(zebra, store, tmp_path: Path):
    server = zebra([bib(n, modified=f"202301{n:02d}") for n in range(1, 21)])
    source = z_source(server.url, incremental="modified")
    first = harvest_source(source, store)
    assert first.ok and first.counts.added == 20 and first.high_water == "20230120120000"
    changed = [bib(n, title=f"Changed {n}", modified="20240301") for n in (3, 4)] + [bib(21, modified="20240301")]
    server.update(write_mrc(tmp_path / "changed.mrc", changed))
    second = harvest_source(source, store)
    assert second.ok, second.error
    run = store.runs("zmember")[0]
    assert run["full"] is False or run["full"] == 0
    # only the records modified on or after the high-water day were fetched (the day is inclusive)
    assert (second.counts.added, second.counts.updated, second.counts.unchanged) == (1, 2, 1)
    assert second.counts.deleted == 0
    assert second.high_water == "20240301120000"
    assert "Changed 3" in store.get("zmember", "rec00003").record.payload.decode()
    assert store.count("zmember") == 21


def test_deletion_seen_by_next_full_harvest(zebra, store, tmp_path: Path):
    records = [bib(n) for n in range(1, 21)]
    server = zebra(records)
    assert harvest_source(z_source(server.url), store).ok
    server.delete(write_mrc(tmp_path / "gone.mrc", records[:2]))
    report = harvest_source(z_source(server.url), store, full=True)
    assert report.ok, report.error
    assert report.counts.deleted == 2 and store.count("zmember") == 18
    assert store.get("zmember", "rec00001").record.deleted


def test_shrink_guard_deletes_nothing(zebra, store, tmp_path: Path):
    records = [bib(n) for n in range(1, 21)]
    server = zebra(records)
    assert harvest_source(z_source(server.url), store).ok
    server.delete(write_mrc(tmp_path / "gone.mrc", records[:10]))  # half the catalogue "vanishes"
    report = harvest_source(z_source(server.url), store, full=True)
    assert report.status == "held"  # the safety stop (harvester.safety): held for approval, not applied
    assert "10 of the 20 records" in report.error and "nothing was marked deleted" in report.error
    assert store.count("zmember") == 20 and store.runs("zmember")[0]["status"] == "held"
    assert not store.checkpoint("zmember").in_progress
    assert OpsStore(store.engine).holds("zmember")[0].unseen == 10
    # a member that really shrank: raise the threshold for it
    allowed = harvest_source(z_source(server.url, max_shrink=0.6), store, full=True)
    assert allowed.ok and allowed.counts.deleted == 10


def test_lookup_by_identifiers(zebra, store):
    server = zebra([bib(n) for n in range(1, 11)])
    report = harvest_source(z_source(server.url, ids=["rec00002", "rec00009", "nosuch"]), store)
    assert report.ok, report.error
    assert ids(store) == ["rec00002", "rec00009"]


def test_interrupted_harvest_resumes_without_duplicates(zebra, store):
    server = zebra([bib(n, year=2000 + n % 2) for n in range(1, 41)])
    source = z_source(server.url, query=["@attr 1=31 @attr 4=109 2000", "@attr 1=31 @attr 4=109 2001"], batch_size=6)

    def stop_after_five(p: HarvestProgress) -> None:
        if p.page == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        harvest_source(source, store, progress=stop_after_five)
    cp = store.checkpoint("zmember")
    state = json.loads(cp.state)
    assert cp.in_progress and (state["query"], state["offset"]) == (1, 6)  # 20 hits: 6+6+6+2, then 6 of the next
    assert store.count("zmember") == 26 and store.runs("zmember")[0]["status"] == "interrupted"
    report = harvest_source(source, store)
    assert report.ok, report.error
    assert report.counts.added == 14 and report.counts.unchanged == 0  # nothing fetched twice
    assert store.count("zmember") == 40 and store.runs("zmember")[0]["resumed"]
    assert not store.checkpoint("zmember").in_progress


def test_bad_query_diagnostic(zebra, store):
    server = zebra([bib(1)])
    report = harvest_source(z_source(server.url, query="@attr 1=9999 anything"), store)
    assert report.status == "failed"
    assert "Bib-1 error 114" in report.error and "Unsupported Use attribute" in report.error
    assert "9999" in report.error and server.url in report.error
    bad_pqf = harvest_source(z_source(server.url, query="@attr 1=4 @and x"), store)
    assert bad_pqf.status == "failed" and "not a valid PQF query" in bad_pqf.error


def test_refused_port_fails_at_once(store):
    url = f"z3950://127.0.0.1:{free_port()}/Default"
    start = time.monotonic()
    report = harvest_source(z_source(url), store)
    assert report.status == "failed" and "error 10000" in report.error and "Connect failed" in report.error
    assert time.monotonic() - start < 3


def test_silent_server_times_out(store):
    silent = SilentServer()
    try:
        start = time.monotonic()
        report = harvest_source(z_source(f"z3950://127.0.0.1:{silent.port}/Default", timeout=1.0), store)
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert report.status == "failed" and "error 10007" in report.error and "Timeout" in report.error
    assert elapsed < 10


def test_gbk_unimarc_converted_to_utf8(zebra, store):
    titles = {"hw001": "中国图书馆学报", "hw002": "红楼梦", "hw003": "数据库系统概论"}
    raw = [unimarc_gbk(k, v) for k, v in titles.items()]
    server = zebra(raw=raw, source_charset="gbk", record_charset="gbk", query_encoding="gbk")
    source = z_source(server.url, syntax="unimarc", charset="gbk", format="unimarc")
    report = harvest_source(source, store)
    assert report.ok, report.error and report.counts.added == 3
    for local_id, title in titles.items():
        payload = store.get("zmember", local_id).record.payload
        assert title.encode("utf-8") in payload and title.encode("gbk") not in payload
        rec = next(MARCReader(payload, to_unicode=True, force_utf8=True))
        assert rec["200"]["a"] == title
    # query terms go out in GBK too (query_charset defaults to charset)
    lookup = harvest_source(z_source(server.url, id="hw", syntax="unimarc", charset="gbk", format="unimarc",
                                     query="@attr 1=4 红楼梦"), store)
    assert lookup.ok, lookup.error
    assert ids(store, "hw") == ["hw002"]


def test_without_charset_records_stay_gbk(zebra, store):
    server = zebra(raw=[unimarc_gbk("hw001", "红楼梦")], source_charset="gbk", record_charset="gbk")
    assert harvest_source(z_source(server.url, syntax="unimarc", format="unimarc"), store).ok
    assert "红楼梦".encode("gbk") in store.get("zmember", "hw001").record.payload


# -- SRU ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.1", "1.2", "2.0"])
def test_sru_full_harvest_and_paging(zebra, store, version):
    server = zebra([bib(n) for n in range(1, 24)])
    pages = []
    report = harvest_source(sru_source(server.sru_url, sru_version=version, batch_size=10), store,
                            progress=pages.append)
    assert report.ok, report.error
    assert store.count("srumember") == 23 and [p.records for p in pages] == [10, 20, 23]
    row = store.get("srumember", "rec00023")
    assert row.record.syntax == "marcxml" and b"Title 23" in row.record.payload
    assert row.record.payload.startswith(b"<record")


def test_sru_bad_query_diagnostic(zebra, store):
    server = zebra([bib(1)])
    report = harvest_source(sru_source(server.sru_url, query="foo.bar=1"), store)
    assert report.status == "failed" and "info:srw/diagnostic/1 error 15" in report.error
    assert "Unsupported context set" in report.error


def test_sru_incremental_and_deletions(zebra, store, tmp_path: Path):
    records = [bib(n) for n in range(1, 11)]
    server = zebra(records)
    assert harvest_source(sru_source(server.sru_url), store).ok
    server.delete(write_mrc(tmp_path / "gone.mrc", records[:1]))
    report = harvest_source(sru_source(server.sru_url), store, full=True)
    assert report.ok and report.counts.deleted == 1 and store.count("srumember") == 9
