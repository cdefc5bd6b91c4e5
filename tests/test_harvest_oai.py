"""OAI-PMH harvesting against a real OAI-PMH server (the ``oaipmh`` package) on loopback.

Faults a real peer cannot be made to produce on demand (503 with
Retry-After, HTTP 500 forever, broken XML, a looping token) are injected by
small WSGI middlewares in front of the real server; nothing in the harvester
is mocked.
"""
from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from lxml import etree

from consortium.config import Source
from storage.db import make_engine, metadata, sqlite_url
from harvester.clients.oai import BadArgument, CannotDisseminateFormat, ListSpec, OAIClient, OAIError, format_datestamp
from harvester.harvest import harvest_source
from harvester.clients.dumps import DumpError
from harvester.clients.oai import BadResponse, TransportError
from harvester.clients.xmlsafe import XMLError
from harvester.clients.zoom import YazMissing, ZoomConnectError, ZoomError, ZoomTimeout
from harvester.errors import HarvestError
from harvester.retry import RETRY_STATUS, TRANSIENT, RetryPolicy, retry_after_seconds
from harvester.run import HarvestProgress
from harvester.store import RawStore
from marc_fixtures import collection, make_record, marcxml, oai_records
from demo.oai_member import DAY, OaiApp, OaiRecord, make_app, serve

DATABASES = ("sqlite", "postgresql")  # the store tests run on both (see conftest.py)

MARC_NS = "http://www.loc.gov/MARC21/slim"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Provider:
    url: str
    records: list[OaiRecord]
    app: OaiApp
    log: list[dict[str, str]]

    def list_requests(self) -> list[dict[str, str]]:
        return [p for p in self.log if p.get("verb") == "ListRecords"]


@pytest.fixture
def provider():
    """Start a real OAI-PMH provider (optionally behind a fault-injecting middleware)."""
    stops = []

    def start(records: list[OaiRecord] | None = None, batch_size: int = 3, granularity: str | None = None,
              middleware=None) -> Provider:
        records = oai_records(10) if records is None else records
        kwargs = {"granularity": granularity} if granularity else {}
        app = make_app(records, repository_name="Test member", batch_size=batch_size, **kwargs)
        log: list[dict[str, str]] = []

        def logged(environ, start_response):
            log.append({k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
            return app(environ, start_response)

        url, stop = serve(middleware(logged) if middleware else logged)
        stops.append(stop)
        return Provider(url, records, app, log)

    yield start
    for stop in stops:
        stop()


def oai_source(url: str, **kw) -> Source:
    """A member with test-sized retry settings (backoff capped by retry_after_max)."""
    settings = dict(id="member", name="Member library", region="East", protocol="oai", url=url,
                    metadata_prefix="marc21", timeout=5.0, max_retries=2, retry_after_max=0.05)
    settings.update(kw)
    return Source(**settings)


def rewriting(fn):
    """Middleware: pass the request to the real server, then ``fn(params, body) -> body``."""
    def middleware(app):
        def wrapped(environ, start_response):
            params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"] = status
                return lambda data: None
            body = b"".join(app(environ, capture))
            body = fn(params, body)
            start_response(captured["status"], [("Content-Type", "text/xml; charset=utf-8"),
                                                ("Content-Length", str(len(body)))])
            return [body]
        return wrapped
    return middleware


def failing(status: str, times: int | None, headers: list[tuple[str, str]] = ()):
    """Middleware: answer ``status`` to the first ``times`` requests (None: forever)."""
    def middleware(app):
        state = {"n": 0}

        def wrapped(environ, start_response):
            state["n"] += 1
            if times is None or state["n"] <= times:
                start_response(status, [("Content-Type", "text/plain"), *headers])
                return [b"busy"]
            return app(environ, start_response)
        return wrapped
    return middleware


def stored(store: RawStore, source: str = "member") -> dict[str, tuple[str, str | None, bool]]:
    """local id → (content hash, datestamp, deleted) for every raw record of a source."""
    return {i: (r.record.content_hash, r.record.datestamp, r.record.deleted)
            for i in store.local_ids(source, include_deleted=True) if (r := store.get(source, i))}


def title_of(payload: bytes) -> str:
    root = etree.fromstring(payload)
    return root.findtext(f".//{{{MARC_NS}}}datafield[@tag='245']/{{{MARC_NS}}}subfield[@code='a']")


# -- the happy paths -------------------------------------------------------------
def test_full_harvest_stores_every_record_page_by_page(provider, store):
    p = provider(oai_records(10), batch_size=3)
    seen: list[HarvestProgress] = []
    report = harvest_source(oai_source(p.url), store, progress=seen.append)

    assert report.status == "ok", report.error
    assert report.counts.added == 10 and report.counts.seen == 10
    assert [s.page for s in seen] == [1, 2, 3, 4] and [s.records for s in seen] == [3, 6, 9, 10]
    assert seen[-1].counts.added == 10
    assert len(p.list_requests()) == 4 and "resumptionToken" in p.list_requests()[1]
    row = store.get("member", "oai:test:7")
    assert row.record.syntax == "marcxml" and row.record.format == "auto"  # no format given: auto
    assert row.record.datestamp == "2024-01-01T00:07:00Z"
    assert title_of(row.record.payload) == "Title 7"
    assert etree.QName(etree.fromstring(row.record.payload)).namespace == MARC_NS
    assert b"OAI/2.0" not in row.record.payload  # the envelope's namespace is not dragged along
    assert report.high_water == "2024-01-01T00:10:00Z"
    cp = store.checkpoint("member")
    assert cp.high_water == report.high_water and not cp.in_progress and cp.resume_token is None
    run = store.runs("member")[0]
    assert run["status"] == "ok" and run["added"] == 10 and run["full"]


def test_incremental_harvest_fetches_only_changes(provider, store):
    p = provider(oai_records(10), batch_size=3)
    source = oai_source(p.url)
    assert harvest_source(source, store).counts.added == 10
    p.records[1] = replace(p.records[1], datestamp=datetime(2024, 3, 1),
                           marcxml=marcxml(make_record("2", title="Title 2, revised")))
    p.records.append(OaiRecord("oai:test:11", datetime(2024, 3, 2), marcxml=marcxml(make_record("11"))))
    p.log.clear()

    report = harvest_source(source, store)

    assert report.status == "ok", report.error
    assert p.list_requests()[0]["from"] == "2024-01-01T00:10:00Z"  # the last run's high water
    assert (report.counts.added, report.counts.updated) == (1, 1)
    assert report.counts.unchanged == 1  # the record sitting on the inclusive "from" boundary
    assert title_of(store.get("member", "oai:test:2").record.payload) == "Title 2, revised"
    assert store.checkpoint("member").high_water == "2024-03-02T00:00:00Z"
    assert store.count("member") == 11


def test_deleted_header_deletes_the_record(provider, store):
    p = provider(oai_records(6), batch_size=3)
    source = oai_source(p.url)
    harvest_source(source, store)
    p.records[2] = replace(p.records[2], deleted=True, datestamp=datetime(2024, 2, 1))

    report = harvest_source(source, store)

    assert report.counts.deleted == 1
    row = store.get("member", "oai:test:3")
    assert row.record.deleted and row.record.payload == b""
    assert store.count("member") == 5


def test_harvest_of_one_set(provider, store):
    records = oai_records(8)
    for i, rec in enumerate(records):
        rec.sets = ["main"] if i % 2 == 0 else ["branch"]
    p = provider(records, batch_size=3)

    report = harvest_source(oai_source(p.url, set="branch"), store)

    assert report.status == "ok" and report.counts.added == 4
    assert store.local_ids("member") == ["oai:test:2", "oai:test:4", "oai:test:6", "oai:test:8"]
    assert p.list_requests()[0]["set"] == "branch"


def test_full_harvest_marks_records_gone_from_the_server_deleted(provider, store):
    # Alma forgets deletions (transient): only a full harvest notices them.
    p = provider(oai_records(7), batch_size=3)
    source = oai_source(p.url)
    harvest_source(source, store)
    del p.records[3:5]  # oai:test:4 and oai:test:5 vanish without a trace

    incremental = harvest_source(source, store)
    assert incremental.counts.deleted == 0 and store.count("member") == 7
    full = harvest_source(source, store, full=True)

    assert full.status == "ok", full.error
    assert "from" not in p.list_requests()[-1] or "resumptionToken" in p.list_requests()[-1]
    assert full.counts.deleted == 2 and full.counts.unchanged == 5
    assert store.count("member") == 5
    assert store.get("member", "oai:test:4").record.deleted


def test_day_granularity_repository_gets_day_datestamps(provider, store):
    p = provider(oai_records(5, step=timedelta(days=1)), granularity=DAY)
    source = oai_source(p.url)
    harvest_source(source, store)
    p.records.append(OaiRecord("oai:test:new", datetime(2024, 2, 1), marcxml=marcxml(make_record("n"))))

    report = harvest_source(source, store)

    assert report.status == "ok", report.error
    assert p.list_requests()[-1]["from"] == "2024-01-06"
    assert report.counts.added == 1
    # the repository really refuses seconds: formatting "from" is what made this work
    answer = requests.get(p.url, params={"verb": "ListRecords", "metadataPrefix": "marc21",
                                         "from": "2024-01-06T00:00:00Z"}, timeout=5)
    assert 'code="badArgument"' in answer.text


def test_no_records_match_is_success_with_nothing(provider, store):
    p = provider(oai_records(4))
    report = harvest_source(oai_source(p.url, set="nosuchset"), store)
    assert report.status == "ok", report.error
    assert report.counts.seen == 0 and store.count("member") == 0


def test_oai_dc_and_alma_style_records(provider, store):
    alma = (b'<record><leader>00000nam a2200000 a 4500</leader><controlfield tag="001">99123</controlfield>'
            b'<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Alma title</subfield></datafield></record>')
    p = provider([OaiRecord("oai:alma:99123", datetime(2024, 1, 1), marcxml=alma),
                  *oai_records(2)], batch_size=5)
    harvest_source(oai_source(p.url), store)
    rec = store.get("member", "oai:alma:99123").record
    assert rec.syntax == "marcxml" and etree.QName(etree.fromstring(rec.payload)).namespace is None

    dc = harvest_source(oai_source(p.url, id="dc", metadata_prefix="oai_dc", format="oai_dc"), store)
    assert dc.counts.added == 3
    rec = store.get("dc", "oai:test:1").record
    assert (rec.syntax, rec.format) == ("xml", "oai_dc")
    assert etree.QName(etree.fromstring(rec.payload)).localname == "dc"


def test_record_without_metadata_is_quarantined_and_the_page_goes_on(provider, store):
    def drop_metadata(params, body):
        return re.sub(rb"(<identifier>oai:test:2</identifier>.*?</header>)\s*<metadata>.*?</metadata>",
                      rb"\1", body, count=1, flags=re.S)
    p = provider(oai_records(5), middleware=rewriting(drop_metadata))

    report = harvest_source(oai_source(p.url), store)

    assert report.status == "ok" and report.counts.added == 4 and report.counts.quarantined == 1
    item = store.quarantined("member")[0]
    assert "member" in item["reason"] and "oai:test:2" in item["reason"] and item["stage"] == "harvest"


def test_politeness_delay_between_requests(provider, store):
    p = provider(oai_records(6), batch_size=3)
    start = time.monotonic()
    report = harvest_source(oai_source(p.url, delay=0.2), store)
    assert report.status == "ok"
    assert time.monotonic() - start >= 0.4  # Identify + 2 pages: two waits


# -- resuming --------------------------------------------------------------------
HARVEST_SCRIPT = """
import sys
from consortium.config import Source
from storage.db import make_engine
from harvester.harvest import harvest_source
from harvester.store import RawStore
source = Source(id="member", name="Member", region="East", protocol="oai", url=sys.argv[1], timeout=10.0)
report = harvest_source(source, RawStore(make_engine(sys.argv[2])))
print(report.status, report.error)
"""


def slow(delay: dict[str, float]):
    """Middleware: wait ``delay["seconds"]`` before each request (change it to speed up)."""
    def middleware(app):
        def wrapped(environ, start_response):
            time.sleep(delay["seconds"])
            return app(environ, start_response)
        return wrapped
    return middleware


def test_killed_harvest_resumes_at_the_next_page(provider, store, db, tmp_path):
    delay = {"seconds": 0.25}
    p = provider(oai_records(21), batch_size=3, middleware=slow(delay))
    child = subprocess.Popen([sys.executable, "-c", HARVEST_SCRIPT, p.url, str(db.url)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if store.count("member") >= 6 and store.checkpoint("member").resume_token:
                break
            assert child.poll() is None, child.communicate()
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close(), child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    before = store.count("member")
    assert 6 <= before < 21
    assert store.checkpoint("member").resume_token and store.runs("member")[0]["status"] == "running"
    p.log.clear()
    delay["seconds"] = 0

    report = harvest_source(oai_source(p.url), store)

    assert report.status == "ok", report.error
    assert "resumptionToken" in p.log[0]  # no Identify, no first page again: straight to the next page
    runs = store.runs("member")
    assert runs[0]["resumed"] and runs[1]["status"] == "interrupted"
    assert before + report.counts.added == 21 and report.counts.unchanged == 0  # nothing fetched twice
    # the result equals a clean harvest of the same repository
    clean_engine = make_engine(sqlite_url(tmp_path / "clean.db"))
    metadata.create_all(clean_engine)
    clean = RawStore(clean_engine)
    assert harvest_source(oai_source(p.url), clean).counts.added == 21
    assert stored(store) == stored(clean)
    assert store.checkpoint("member").high_water == clean.checkpoint("member").high_water
    clean_engine.dispose()


def test_expired_resumption_token_restarts_from_the_checkpointed_datestamp(provider, store):
    p = provider(oai_records(10), batch_size=3)
    source = oai_source(p.url)

    def stop_after_two_pages(progress: HarvestProgress) -> None:
        if progress.page == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        harvest_source(source, store, progress=stop_after_two_pages)
    assert store.runs("member")[0]["status"] == "interrupted"
    cp = store.checkpoint("member")
    assert cp.in_progress and cp.resume_token and store.count("member") == 6
    cp.resume_token = "expired-token"  # as FOLIO does after 24 h
    store.save_checkpoint(cp)
    p.log.clear()

    report = harvest_source(source, store)

    assert report.status == "ok", report.error
    assert p.log[0].get("resumptionToken") == "expired-token"
    assert "resumptionToken" not in p.list_requests()[1]  # restarted with the original arguments
    assert report.counts.added == 4 and report.counts.unchanged == 6
    assert store.count("member") == 10 and not store.checkpoint("member").in_progress


def test_repeated_resumption_token_stops_instead_of_looping(provider, store):
    def same_token(params, body):
        return re.sub(rb"<resumptionToken>[^<]*</resumptionToken>", b"<resumptionToken>again</resumptionToken>",
                      body)

    def first_page_for_any_token(app):
        def wrapped(environ, start_response):
            if "resumptionToken=" in environ.get("QUERY_STRING", ""):
                environ = dict(environ, QUERY_STRING="verb=ListRecords&metadataPrefix=marc21")
            return app(environ, start_response)
        return wrapped

    p = provider(oai_records(10), middleware=lambda app: rewriting(same_token)(first_page_for_any_token(app)))
    report = harvest_source(oai_source(p.url), store)

    assert report.status == "failed"
    assert "again" in report.error and "member" in report.error
    assert len(p.list_requests()) == 4  # the list restarted once (a token repeated once is a glitch), then gave up
    assert store.count("member") == 3  # the first page is kept


# -- transport failures ----------------------------------------------------------------
def test_retry_after_is_honoured(provider, store):
    p = provider(oai_records(4), middleware=failing("503 Service Unavailable", 1, [("Retry-After", "1")]))
    start = time.monotonic()
    report = harvest_source(oai_source(p.url, retry_after_max=5.0), store)
    assert report.status == "ok", report.error
    assert time.monotonic() - start >= 1.0
    assert report.counts.added == 4


def test_retry_after_as_http_date_and_cap():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", now) == 30
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert RETRY_STATUS == {408, 429, 500, 502, 503, 504}


def test_one_retry_policy_and_one_error_base():
    policy = RetryPolicy(max_retries=3, backoff=1.0, max_wait=5.0)
    assert [policy.wait(n) for n in range(4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.wait(0, "3") == 3.0 and policy.wait(0, "60") == 5.0  # Retry-After honoured, capped
    assert policy.retryable(503) and not policy.retryable(404)
    assert all(issubclass(cls, TRANSIENT) for cls in (ZoomConnectError, ZoomTimeout, requests.ConnectionError,
                                                      requests.Timeout))
    for cls in (OAIError, BadResponse, TransportError, DumpError, XMLError, ZoomError, YazMissing):
        assert issubclass(cls, HarvestError), cls


def test_429_then_success(provider, store):
    p = provider(oai_records(2), middleware=failing("429 Too Many Requests", 2))
    report = harvest_source(oai_source(p.url, max_retries=3), store)
    assert report.status == "ok" and report.counts.added == 2


def test_read_timeout_is_retried(provider, store):
    def first_request_hangs(app):
        state = {"n": 0}

        def wrapped(environ, start_response):
            state["n"] += 1
            if state["n"] == 1:
                time.sleep(0.6)
            return app(environ, start_response)
        return wrapped

    p = provider(oai_records(2), middleware=first_request_hangs)
    report = harvest_source(oai_source(p.url, timeout=0.2), store)
    assert report.status == "ok", report.error
    assert report.counts.added == 2


def test_unreachable_endpoint_fails_quickly_with_source_and_url(store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/oai"
    start = time.monotonic()
    report = harvest_source(oai_source(url, max_retries=1), store)
    assert time.monotonic() - start < 5
    assert report.status == "failed"
    assert "'member'" in report.error and url in report.error and "refused" in report.error.lower()
    assert store.runs("member")[0]["status"] == "failed" and store.runs("member")[0]["error"] == report.error


def test_http_500_forever_fails_after_retries(provider, store):
    p = provider(oai_records(2), middleware=failing("500 Internal Server Error", None))
    report = harvest_source(oai_source(p.url, max_retries=2), store)
    assert report.status == "failed"
    assert "HTTP 500" in report.error and "3 attempts" in report.error and p.url in report.error
    assert len(p.log) == 0  # the real server never saw a request: the middleware answered all three


def test_http_404_is_not_retried(provider, store):
    p = provider(oai_records(2), middleware=failing("404 Not Found", None))
    start = time.monotonic()
    report = harvest_source(oai_source(p.url, max_retries=5, retry_after_max=1), store)
    assert report.status == "failed" and "HTTP 404" in report.error
    assert time.monotonic() - start < 1


def test_failure_mid_harvest_keeps_what_was_stored(provider, store):
    state = {"n": 0, "broken": True}

    def break_third_page(app):
        def wrapped(environ, start_response):
            if state["broken"] and "resumptionToken=" in environ.get("QUERY_STRING", ""):
                state["n"] += 1
                if state["n"] >= 2:
                    start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
                    return [b"gone"]
            return app(environ, start_response)
        return wrapped

    p = provider(oai_records(10), middleware=break_third_page)
    report = harvest_source(oai_source(p.url, max_retries=1), store)
    assert report.status == "failed" and "HTTP 502" in report.error
    assert store.count("member") == 6 and store.checkpoint("member").resume_token

    state["broken"] = False  # the member recovers; the next run picks up at page 3
    again = harvest_source(oai_source(p.url), store)
    assert again.status == "ok" and again.counts.added == 4 and again.counts.unchanged == 0
    assert store.runs("member")[0]["resumed"] and store.count("member") == 10


def test_demo_provider_runs_as_a_separate_process(tmp_path, store):
    dump = tmp_path / "dump.xml"
    dump.write_bytes(collection([make_record(f"d{i}", title=f"Demo {i}") for i in range(7)]))
    child = subprocess.Popen([sys.executable, "-m", "demo.oai_member", "--port", "0", "--batch-size", "3",
                              "--records", str(dump)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        url = line.split(" at ")[-1].strip()
        assert line.startswith("serving 7 records"), line
        report = harvest_source(oai_source(url), store)
    finally:
        child.terminate()
        child.wait(10)
        child.stdout.close()
    assert report.status == "ok" and report.counts.added == 7
    assert store.local_ids("member")[0] == "oai:demo:d0"


# -- bad responses -----------------------------------------------------------------------
def test_invalid_xml_response_fails_the_run_after_its_retries(provider, store):
    p = provider(oai_records(5), middleware=rewriting(
        lambda params, body: body[: len(body) // 2] if params.get("verb") == "ListRecords" else body))
    report = harvest_source(oai_source(p.url), store)
    assert report.status == "failed"
    assert "invalid XML" in report.error and p.url in report.error and "gave up after 3 attempts" in report.error
    assert len(p.list_requests()) == 3  # max_retries=2: tried three times, no more


def test_forbidden_control_characters_are_dropped(provider, store, caplog):
    p = provider(oai_records(3), middleware=rewriting(
        lambda params, body: body.replace(b"Title 2", b"Title\x1f 2")))
    with caplog.at_level(logging.WARNING, logger="harvester.clients.oai"):
        report = harvest_source(oai_source(p.url), store)
    assert report.status == "ok", report.error
    assert title_of(store.get("member", "oai:test:2").record.payload) == "Title 2"
    assert "control character" in caplog.text


def test_oai_error_response_fails_with_its_code(provider, store):
    p = provider(oai_records(3))
    report = harvest_source(oai_source(p.url, metadata_prefix="nosuchformat"), store)
    assert report.status == "failed"
    assert "cannotDisseminateFormat" in report.error and "member" in report.error and p.url in report.error

    client = OAIClient(p.url, ListSpec("member"))
    with pytest.raises(BadArgument) as caught:
        list(client.list_records(from_="last tuesday"))
    assert isinstance(caught.value, OAIError) and caught.value.code == "badArgument"
    assert "last tuesday" in caught.value.message
    with pytest.raises(CannotDisseminateFormat):
        list(OAIClient(p.url, ListSpec("member", metadata_prefix="nope")).list_records())
    client.close()


def test_html_instead_of_oai(provider, store):
    served = []

    def html(app):
        def wrapped(environ, start_response):
            served.append(environ.get("QUERY_STRING"))
            start_response("200 OK", [("Content-Type", "text/html")])
            return [b"<html><body>Login</body></html>"]
        return wrapped
    p = provider(oai_records(1), middleware=html)
    report = harvest_source(oai_source(p.url), store)
    assert report.status == "failed" and "not an OAI-PMH response" in report.error
    assert len(served) == 3  # a login page with 200 is retried like a 503 (max_retries=2), then fails


def test_other_protocols_fail_without_raising(store):
    # Z39.50 is harvested by harvester.protocols.z3950 (tests/test_harvest_z3950.py); an unreachable one fails cleanly.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = Source(id="z", name="Z", region="East", protocol="z3950", url=f"z3950://127.0.0.1:{port}/db")
    report = harvest_source(source, store)
    assert report.status == "failed" and report.error.startswith("source 'z': ")
    assert store.runs("z")[0]["status"] == "failed"
    # sources.yaml admits only four protocols; a Source built by hand with another fails the same way
    odd = harvest_source(Source(id="g", name="G", region="East", protocol="gopher", url="gopher://x"), store)
    assert odd.status == "failed" and "'gopher' is not one of" in odd.error
    assert store.runs("g")[0]["status"] == "failed"


def test_format_datestamp():
    assert format_datestamp("2024-05-01T10:11:12Z", DAY) == "2024-05-01"
    assert format_datestamp("2024-05-01", "YYYY-MM-DDThh:mm:ssZ") == "2024-05-01T00:00:00Z"
    assert format_datestamp("2024-05-01T10:11:12.345Z", "YYYY-MM-DDThh:mm:ssZ") == "2024-05-01T10:11:12Z"
