"""The stores on PostgreSQL: the pipeline end to end, counters under concurrent writers, the scheduler.

The raw-store tests of ``test_harvest_files``/``test_harvest_oai`` run on both
databases through ``DATABASES``; here the whole CLI pipeline of
``test_pipeline`` runs again with ``UNIONCAT_DB`` pointing at PostgreSQL.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import yaml

import test_pipeline
from storage.db import get_value, make_engine, metadata, next_value
from test_pipeline import consortium  # noqa: F401 - the shared fixture
from unioncat import pipeline
from unioncat.jobs import QUEUED_PREFIX, RqRunner, schedule_tick
from unioncat.settings import load_settings


def test_end_to_end_and_incremental_on_postgres(consortium, pg_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("UNIONCAT_DB", pg_url)
    test_pipeline.test_end_to_end_and_incremental(consortium)
    assert not (consortium[0] / "var" / "unioncat.db").exists()  # it really ran on PostgreSQL


def test_a_dead_member_on_postgres(consortium, pg_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("UNIONCAT_DB", pg_url)
    test_pipeline.test_a_dead_member_fails_loudly_and_the_others_still_harvest(consortium)


def test_counters_hand_out_each_number_once_to_concurrent_writers(pg_url):
    """Eight connections advancing one counter at once: no number twice, none skipped, commit order kept."""
    engine = make_engine(pg_url)
    metadata.create_all(engine)
    got: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def writer() -> None:
        try:
            for _ in range(25):
                with engine.begin() as conn:
                    value = next_value(conn, "test_seq", 3)
                with guard:
                    got.append((value - 2, value))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(n for lo, hi in got for n in range(lo, hi + 1))
    assert numbers == list(range(1, 8 * 25 * 3 + 1))
    with engine.connect() as conn:
        assert get_value(conn, "test_seq") == 600
    engine.dispose()


def test_scheduler_queues_due_sources_once(consortium, pg_url, redis_url):  # noqa: F811
    tmp_path, _ = consortium
    data = yaml.safe_load((tmp_path / "sources.yaml").read_text())
    data["sources"][0]["schedule"] = "daily"
    data["sources"][2]["enabled"] = False
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    settings = load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "var", db_url=pg_url)
    cat = pipeline.Catalogue(settings)
    runner = RqRunner.from_url(redis_url)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat, ["lib-a"]))
        first = schedule_tick(runner, cat)
        # lib-a harvested just now and daily: not due; lib-b never harvested: due; lib-c disabled; and,
        # with no ledger snapshot yet, the ledger refresh
        ledger = runner.connection.get("unioncat:queued:ledger").decode()
        assert len(first) == 2 and ledger in first
        harvest = runner.connection.get(QUEUED_PREFIX + "lib-b").decode()
        assert set(first) == {harvest, ledger}
        assert schedule_tick(runner, cat) == first  # still queued: the same jobs, not second ones
        assert runner.status()["queued"] == 2
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1, minutes=1)
        later = schedule_tick(runner, cat, now=tomorrow)
        assert len(later) == 3 and set(first) <= set(later) and runner.status()["queued"] == 3
    finally:
        runner.connection.close()
        cat.close()


@pytest.mark.parametrize("url_prefix", ["postgresql://", "postgres://"])
def test_postgres_urls_use_psycopg_3(url_prefix):
    from storage.db import driver_url

    assert driver_url(url_prefix + "u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert driver_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"


def test_rq_runner_does_every_job_of_the_protocol(redis_url):
    from unioncat.jobs import JobRunner

    runner = RqRunner.from_url(redis_url)
    try:
        for name in JobRunner.__dict__:
            if not name.startswith("_"):
                assert callable(getattr(runner, name)), name
        assert runner.status() == {"queued": 0, "started": 0, "scheduled": 0, "failed": [], "workers": 0}
    finally:
        runner.connection.close()
