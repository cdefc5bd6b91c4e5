"""The harvest fault suite (issue 19): a real OAI-PMH member behind a fault-injecting proxy.

Every case ends with exactly the member's identifiers in the store — none lost, none twice — after
the member misbehaved: 503 with Retry-After, 500, a reset mid-body, truncated XML, an HTML page
served with 200, a slow drip, a 200 MB page, a repeated token, an expired token, a record repeated
across pages, a harvester killed with SIGKILL and run again, the member shrinking by 90 %; and two
harvests of one member at once (the second reports "already being harvested" and touches nothing).
The member is ``demo.oai_member`` on the ``oaipmh`` server; only the faults come from
``peers.fault_proxy``.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from consortium.config import Source
from demo.oai_member import make_app, serve
from harvester.harvest import harvest_source
from harvester.store import RawStore
from marc_fixtures import oai_records
from peers.fault_proxy import FaultProxy

DATABASES = ("sqlite", "postgresql")
ROOT = Path(__file__).resolve().parent.parent
RECORDS = 20  # 7 pages of 3: every fault below hits a page in the middle of the list

#: The fault cases that end with one run: kind → what the proxy is asked for, and the source's settings.
CASES = {
    "503": ({}, {"retry_after_max": 2.0}),
    "500": ({}, {}),
    "reset": ({}, {}),
    "truncated": ({}, {}),
    "html": ({}, {}),
    "drip": ({"drip_seconds": 0.5}, {"options": {"deadline": 2.0}}),
    "huge": ({"huge_bytes": 200 * 2**20}, {"options": {"max_page_mb": 16}}),
    "repeat_token": ({}, {}),
    "expired_token": ({}, {}),
    "duplicate": ({}, {}),
}

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


def member_source(url: str, **kw) -> Source:
    settings = dict(id="member", name="Member library", region="East", protocol="oai", url=url,
                    metadata_prefix="marc21", timeout=5.0, max_retries=3, retry_after_max=0.05)
    settings.update(kw)
    return Source(**settings)


@pytest.fixture
def member():
    """The real OAI-PMH member (20 records, pages of 3) and the fault proxy in front of it."""
    app = make_app(oai_records(RECORDS), repository_name="Fault member", batch_size=3)
    url, stop = serve(app)
    proxy = FaultProxy(url)
    yield app, proxy
    proxy.close()
    stop()


def assert_exactly_the_members(store: RawStore, app) -> None:
    """The store holds each live identifier of the member once, and nothing else."""
    expected = sorted(r.identifier for r in app.records if not r.deleted)
    got = store.local_ids("member")
    duplicated = [i for i, n in Counter(got).items() if n > 1]
    assert duplicated == [] and sorted(got) == expected


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fault_then_exactly_the_members_records(member, store, kind):
    app, proxy = member
    fault_kw, source_kw = CASES[kind]
    fault = proxy.inject(kind, **fault_kw)

    report = harvest_source(member_source(proxy.url, **source_kw), store)

    assert report.status == "ok", report.error
    assert fault.fired == 1, proxy.log
    assert_exactly_the_members(store, app)
    assert report.counts.added == RECORDS and store.checkpoint("member").in_progress is False
    if kind == "huge":
        assert proxy.huge_sent < 100 * 2**20  # the client stopped reading at its 16 MB cap
    if kind in ("repeat_token", "expired_token"):
        restarts = [p for p, f in proxy.log if p.get("verb") == "ListRecords" and "metadataPrefix" in p]
        assert len(restarts) == 2  # the list restarted once, from the run's own arguments


def test_a_fault_that_persists_fails_after_a_bounded_number_of_tries(member, store):
    app, proxy = member
    proxy.inject("truncated", times=100)
    report = harvest_source(member_source(proxy.url, max_retries=2), store)
    assert report.status == "failed" and "invalid XML" in report.error and "gave up after 3 attempts" in report.error
    assert sum(1 for _, f in proxy.log if f == "truncated") == 3
    assert store.count("member") == 3  # the pages before it are kept; the next run resumes
    proxy.faults.clear()
    assert harvest_source(member_source(proxy.url), store).status == "ok"
    assert_exactly_the_members(store, app)


def test_a_slow_member_cannot_hold_the_harvest_past_its_deadline(member, store):
    """Issue 19 item 9: one byte every 0.5 s kept a harvest with ``timeout: 5`` running past 90 s."""
    app, proxy = member
    proxy.inject("drip", times=100, drip_seconds=0.5)
    started = time.monotonic()
    report = harvest_source(member_source(proxy.url, max_retries=1, options={"deadline": 1.5}), store)
    took = time.monotonic() - started
    assert report.status == "failed" and "deadline" in report.error and "1.5 s" in report.error
    assert took < 30, took  # two tries of 1.5 s plus the pages before: bounded, not 90 s and counting


def _spawn(url: str, db) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HARVEST_SCRIPT, url, str(db.url.render_as_string(False))],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_pages(child: subprocess.Popen, store: RawStore, records: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and store.count("member") < records:
        assert child.poll() is None, child.communicate()
        time.sleep(0.02)
    assert store.count("member") >= records


def test_killed_with_sigkill_and_run_again(member, store, db):
    app, proxy = member
    proxy.delay = 0.3  # a slow member, so the kill lands mid-list
    child = _spawn(proxy.url, db)
    try:
        _wait_for_pages(child, store, 6)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close(), child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert store.lock_holder("member") is not None  # the dead process's lock is still there …
    proxy.delay = 0

    report = harvest_source(member_source(proxy.url), store)  # … and taken over: its process is gone

    assert report.status == "ok", report.error
    assert store.runs("member")[0]["resumed"]
    assert_exactly_the_members(store, app)
    assert store.lock_holder("member") is None


def test_two_harvests_of_one_member_at_once(member, store, db):
    """Issue 19 item 12: the second harvest used to resume from the first's checkpoint and report "ok"."""
    app, proxy = member
    proxy.delay = 0.3
    child = _spawn(proxy.url, db)
    try:
        _wait_for_pages(child, store, 3)
        runs_before = len(store.runs("member"))
        report = harvest_source(member_source(proxy.url), store)
        assert report.status == "skipped" and "already being harvested" in report.error
        assert len(store.runs("member")) == runs_before  # no run row, no checkpoint touched
        assert store.runs("member")[0]["status"] == "running"
        proxy.delay = 0
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert out.decode().startswith("ok"), (out, err)
    assert_exactly_the_members(store, app)
    assert [r["status"] for r in store.runs("member")] == ["ok"]


def test_a_member_shrinking_by_90_percent_loses_nothing(member, store):
    app, proxy = member
    assert harvest_source(member_source(proxy.url), store).status == "ok"
    everything = list(app.records)
    del app.records[2:]  # a broken export: 2 of 20 records left

    report = harvest_source(member_source(proxy.url), store, full=True)

    assert report.status == "held" and report.counts.deleted == 0
    assert sorted(store.local_ids("member")) == sorted(r.identifier for r in everything)
    app.records[:] = everything  # the member fixes its export
    report = harvest_source(member_source(proxy.url), store, full=True)
    assert report.status == "ok", report.error
    assert_exactly_the_members(store, app)


def test_a_streamed_response_still_reads_as_sickle_expects(member):
    """The body is streamed under the limits, then kept: sickle's ``raw`` and ``xml`` both read it."""
    from harvester.clients.oai import ListSpec, OAIClient

    app, proxy = member
    client = OAIClient(proxy.url, ListSpec("member"), max_bytes=2**20, deadline=10)
    response = client.sickle.harvest(verb="Identify")
    assert "<repositoryName>Fault member</repositoryName>" in response.raw
    assert response.xml.tag.endswith("OAI-PMH")
    client.close()
