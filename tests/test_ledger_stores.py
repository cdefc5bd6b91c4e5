"""The store reads behind the ledger and the overview, on SQLite and PostgreSQL alike: the per-member run
reads that step through sources by a loose index scan, raw records' first-seen times, and the ledger's
monthly snapshots (one row per member and month, upserted)."""
from __future__ import annotations

import pytest

from harvester.raw import RawRecord
from harvester.store import Counts, RawStore
from storage.db import make_engine, sqlite_url
from unioncat import schema
from web.ledger_store import FIGURES, LedgerSnapshots


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else sqlite_url(tmp_path / "l.db")
    engine = make_engine(url)
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def _record(source: str, local_id: str) -> RawRecord:
    return RawRecord(source=source, local_id=local_id, datestamp=None, deleted=False, format="marc21",
                     syntax="marcxml", payload=b"<record/>")


def test_run_reads_per_member_and_first_seen(engine):
    store = RawStore(engine)
    statuses = {"m-a": ["ok", "failed", "failed"], "m-b": ["ok", "ok"], "m-c": ["failed"]}
    for source, runs in statuses.items():
        store.apply([_record(source, f"{source}-{n}") for n in range(len(runs))])
        for status in runs:
            store.finish_run(store.start_run(source, "file", False, None), status, Counts())
    assert {s: r["status"] for s, r in store.last_runs().items()} == {"m-a": "failed", "m-b": "ok", "m-c": "failed"}
    assert store.record_trend(limit=2) == {"m-a": [3, 3], "m-b": [2, 2], "m-c": [1]}
    last_ok, failures = store.success_streaks()
    assert set(last_ok) == {"m-a", "m-b"} and failures == {"m-a": 2, "m-c": 1}
    assert store.counts_by_source() == {"m-a": 3, "m-b": 2, "m-c": 1}
    first = store.first_seen()
    assert set(first) == {("m-a", "m-a-0"), ("m-a", "m-a-1"), ("m-a", "m-a-2"), ("m-b", "m-b-0"), ("m-b", "m-b-1"),
                          ("m-c", "m-c-0")}
    assert first[("m-a", "m-a-0")].tzinfo is not None


def test_snapshots_keep_one_row_per_member_and_month(engine):
    snapshots = LedgerSnapshots(engine)
    row = {"member": "m-a", **{f: 1 for f in FIGURES}, "fresh_days": None}
    assert snapshots.save("2026-11", [row]) == 1
    snapshots.save("2026-12", [row])
    snapshots.save("2026-12", [{**row, "original": 7}])  # the month's later figures replace its earlier ones
    history = snapshots.history("m-a")
    assert [h["month"] for h in history] == ["2026-11", "2026-12"]
    assert history[1]["original"] == 7 and history[1]["fresh_days"] is None
    assert snapshots.history("m-a", months=1)[0]["month"] == "2026-12"
    assert snapshots.history("nobody") == []
