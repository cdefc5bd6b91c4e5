"""Jobs through real rq workers (separate processes), real redis-server and real PostgreSQL.

The consortium of ``test_pipeline`` (two file members, one OAI-PMH member on
the real oaipmh provider) is harvested and built by ``unioncat worker``
processes into PostgreSQL — with the embedded index and with a real
Elasticsearch node — and must search exactly like the in-process embedded
default on SQLite.  Then the failures a data centre meets: a worker SIGKILLed
in the middle of a harvest, two harvests of one source at once, a member that
is down (its job ends in the failed registry that ``unioncat status`` shows).
Last, the in-process runner (no Redis): a mail server that is down fails no harvest.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rq.job import Job

from marc_fixtures import iso2709, make_record, marcxml
from test_pipeline import consortium  # noqa: F401 - the shared fixture
from unioncat import pipeline
from unioncat.cli import main
from unioncat.cli.jobs import redacted
from demo.oai_member import OaiRecord, make_app, serve
from harvester.ops import OpsStore
from publish.zebra_server import free_port
from unioncat.inprocess import InProcessRunner
from unioncat.jobs import JobPolicy, RqRunner
from web.actions import JobRunner
from web.ledger_store import LedgerSnapshots
from unioncat.present import search_json
from unioncat.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_proctree", REPO / "bench" / "proctree.py")
proctree = importlib.util.module_from_spec(_spec)   # the benches' process-tree walker: one for both
_spec.loader.exec_module(proctree)
FAST = JobPolicy(harvest_timeout=120, build_timeout=120, retry_intervals=(1, 1), heartbeat=1, build_slice=5)
QUERIES = ["personal rights domestic relations", "中国", "annual report", "dream red chamber", "only in library",
           "slow title"]


class Workers:
    """``unioncat worker`` processes, each in its own process group so a SIGKILL takes its job with it."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path, self.env, self.procs = tmp_path, env, {}

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"worker-{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "unioncat", "--sources", str(self.tmp_path / "sources.yaml"),
             "--data", str(self.tmp_path / "jobs-var"), "worker", "--name", name, "--heartbeat", "1",
             "--retry", "1,1", "--build-slice", "5"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL a worker and everything under it (rq's work horse runs in a session of its own)."""
        proc = self.procs.pop(name)
        proctree.kill_tree(proc.pid)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp_path.glob("worker-*.log"))


@pytest.fixture
def scaled(consortium, pg_url, redis_url):  # noqa: F811 - pytest fixture
    """The consortium plus a slow OAI member (0.3 s a page), the env for workers and a runner."""
    tmp_path, _ = consortium
    records = [OaiRecord(identifier=f"oai:slow:{n}", datestamp=datetime(2025, 4, 1, 8, n % 60), sets=[],
                         marcxml=marcxml(make_record(f"S{n}", title=f"Slow title {n}", year="2010")))
               for n in range(30)]
    app = make_app(records, repository_name="Slow", batch_size=3)
    gate = threading.Event()  # cleared: the provider stops after its third request until the test sets it
    gate.set()
    served = [0]

    def slow(environ, start_response):
        time.sleep(0.3)
        served[0] += 1
        if served[0] > 3 and not gate.is_set():
            gate.wait(60)
        return app(environ, start_response)

    url, stop = serve(slow)
    data = yaml.safe_load((tmp_path / "sources.yaml").read_text())
    data["sources"].append({"id": "lib-slow", "name": "Slow Library", "region": "Suzhou", "protocol": "oai",
                            "url": url, "metadata_prefix": "marcxml"})
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ, UNIONCAT_DB=pg_url, UNIONCAT_REDIS=redis_url,
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    workers = Workers(tmp_path, env)
    runner = RqRunner.from_url(redis_url, FAST)
    settings = load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "jobs-var",
                             db_url=pg_url)
    workers.gate, workers.served = gate, served
    yield tmp_path, workers, runner, settings
    gate.set()
    workers.stop()
    runner.connection.close()
    stop()


def wait_idle(runner: RqRunner, workers: Workers, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if runner.idle() else 0
        if quiet >= 3:  # idle on three looks in a row: no job between two links of a chain
            return
        time.sleep(0.3)
    raise AssertionError(f"jobs still running after {timeout}s: {runner.status()}\n{workers.logs()}")


def results(settings) -> dict:
    cat = pipeline.Catalogue(settings)
    try:
        out = {}
        for q in QUERIES:
            r = search_json(cat, q, {}, limit=50)
            out[q] = (r["total"], sorted((h["title"], tuple(sorted(x["source"] for x in h["holdings"])))
                                         for h in r["hits"]),
                      {name: sorted(map(json.dumps, values)) for name, values in r["facets"].items()})
        counts = (cat.raw.count(), cat.records.count(), cat.clusters.count(),
                  sum(cat.raw.quarantined_by_source().values()))
        return {"search": out, "counts": counts}
    finally:
        cat.close()


def in_process_reference(tmp_path: Path) -> dict:
    settings = load_settings(env={}, sources_path=tmp_path / "sources.yaml", data_dir=tmp_path / "embedded-var")
    cat = pipeline.Catalogue(settings)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat))
        pipeline.build(cat)
    finally:
        cat.close()
    return results(settings)


@pytest.mark.parametrize("search", ["embedded", "elasticsearch"])
def test_workers_into_postgres_search_like_the_embedded_default_and_survive_a_sigkill(scaled, search, request):
    tmp_path, workers, runner, settings = scaled
    if search == "elasticsearch":  # the workers build into a real Elasticsearch node (tests/peers/elastic.py)
        url = request.getfixturevalue("elasticsearch_url")
        alias = f"jobs-{tmp_path.name.lower()}"
        workers.env.update(UNIONCAT_SEARCH=url, UNIONCAT_ES_INDEX=alias)
        settings = replace(settings, search=url, es_index=alias)
    reference = in_process_reference(tmp_path)
    assert reference["counts"][0] == 40  # 5 + 4 + 2 + 30 minus the record cut short... checked below too

    workers.served[0] = 0
    workers.gate.clear()  # the slow member hangs after three requests: the kill lands mid-harvest
    workers.start("w1")
    workers.start("w2")
    slow_job = runner.harvest("lib-slow", requested_by="test")
    for source in ("lib-a", "lib-b", "lib-c"):
        runner.harvest(source, requested_by="test")
    # SIGKILL the worker running the slow harvest once some pages are committed
    probe = pipeline.Catalogue(settings)
    try:
        deadline = time.monotonic() + 60
        while probe.raw.count("lib-slow") < 6:
            assert time.monotonic() < deadline, workers.logs()
            time.sleep(0.1)
    finally:
        probe.close()
    job = Job.fetch(slow_job, connection=runner.connection)
    assert job.get_status() == "started"
    workers.kill(job.worker_name)
    workers.gate.set()
    workers.start("w3")
    deadline = time.monotonic() + 30
    while slow_job not in runner.recover_abandoned(grace=3):
        assert time.monotonic() < deadline, (f"the killed worker's job was never recovered: {runner.status()} "
                                             f"{Job.fetch(slow_job, connection=runner.connection).get_status()}")
        time.sleep(0.5)
    wait_idle(runner, workers)

    assert Job.fetch(slow_job, connection=runner.connection).get_status() == "finished"
    got = results(settings)
    assert got == reference
    cat = pipeline.Catalogue(settings)
    try:
        runs = cat.raw.runs("lib-slow")
        assert [r["status"] for r in runs] == ["ok", "interrupted"]  # newest first: the retry resumed
        assert cat.raw.count("lib-slow") == 30 and len(cat.raw.local_ids("lib-slow")) == 30
    finally:
        cat.close()
    status = runner.status()
    assert status["failed"] == [] and status["workers"] >= 2


def test_a_source_is_never_harvested_twice_at_once(scaled):
    tmp_path, workers, runner, settings = scaled
    first = runner.harvest("lib-slow")
    assert runner.harvest("lib-slow") == first  # still queued: the same job, not a second one
    workers.gate.clear()  # the first harvest hangs after three requests until the second job has run
    workers.start("w1")
    workers.start("w2")
    deadline = time.monotonic() + 30
    while Job.fetch(first, connection=runner.connection).get_status() != "started":
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.05)
    second = runner.harvest("lib-slow")
    assert second != first
    while Job.fetch(second, connection=runner.connection).get_status() != "finished":
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.05)
    outcome = Job.fetch(second, connection=runner.connection).return_value()
    assert outcome["status"] == "skipped" and first in outcome["reason"]
    workers.gate.set()
    wait_idle(runner, workers)
    cat = pipeline.Catalogue(settings)
    try:
        assert [r["status"] for r in cat.raw.runs("lib-slow")] == ["ok"]
        assert cat.clusters.count() == 30
    finally:
        cat.close()


def test_a_failing_source_is_retried_then_shown_in_status(scaled):
    tmp_path, workers, runner, settings = scaled
    data = yaml.safe_load((tmp_path / "sources.yaml").read_text())
    data["sources"].append({"id": "lib-dead", "name": "Dead", "region": "Wuxi", "protocol": "oai",
                            "url": "http://127.0.0.1:9/oai", "max_retries": 1, "retry_after_max": 0.1})
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    workers.start("w1")
    job_id = runner.harvest("lib-dead", requested_by="staff:alice")
    wait_idle(runner, workers)
    job = Job.fetch(job_id, connection=runner.connection)
    assert job.get_status() == "failed" and job.retries_left == 0
    env = {k: v for k, v in workers.env.items() if k.startswith("UNIONCAT_")}
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data",
                                       str(tmp_path / "jobs-var"), "status", "--json"], env=env)
    data = json.loads(result.stdout)
    (failed,) = data["jobs"]["failed"]
    assert failed["id"] == job_id and "lib-dead" in failed["description"] and "staff:alice" in failed["description"]
    assert "127.0.0.1:9" in failed["error"] and failed["ended_at"]
    text = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data",
                                     str(tmp_path / "jobs-var"), "status"], env=env).stdout
    assert f"FAILED {job_id} harvest lib-dead" in text and "1 worker(s)" in text


def test_with_redis_set_the_cli_queues_jobs_instead_of_working(scaled):
    tmp_path, workers, runner, settings = scaled
    env = {k: v for k, v in workers.env.items() if k.startswith("UNIONCAT_")}
    args = ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "jobs-var")]
    out = CliRunner().invoke(main, [*args, "harvest", "lib-a", "lib-c"], env=env, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    ids = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert [line.split("\t")[1] for line in out.stdout.splitlines()] == ["harvest lib-a", "harvest lib-c"]
    assert all(Job.fetch(i, connection=runner.connection).get_status() == "queued" for i in ids)
    out = CliRunner().invoke(main, [*args, "build"], env=env, catch_exceptions=False)
    assert out.stdout.endswith("\tbuild\n") and runner.status()["queued"] == 3
    # --in-process still works here and now
    out = CliRunner().invoke(main, [*args, "harvest", "--in-process", "lib-c"], env=env, catch_exceptions=False)
    assert "[lib-c] ok: 2 added" in out.stderr
    # the scheduler queues what is due (lib-a and lib-c are queued already and keep their jobs) and,
    # with no ledger snapshot yet, the ledger refresh; a second tick queues no second refresh
    out = CliRunner().invoke(main, [*args, "scheduler", "--once"], env=env, catch_exceptions=False)
    assert out.exit_code == 0 and "queued 5 job(s)" in out.stderr
    assert runner.status()["queued"] == 6  # + lib-b, lib-slow and the ledger
    ledger_id = runner.connection.get("unioncat:queued:ledger").decode()
    assert Job.fetch(ledger_id, connection=runner.connection).description == "ledger refresh for scheduler"
    assert runner.ledger(requested_by="test") == ledger_id
    # an unreachable Redis is reported by status, not a traceback
    env["UNIONCAT_REDIS"] = "redis://127.0.0.1:9/0"
    out = CliRunner().invoke(main, [*args, "status"], env=env)
    assert "jobs: Redis at redis://127.0.0.1:9/0 unreachable" in out.stdout
    assert redacted("redis://:s3cret@cache:6379/0") == "redis://cache:6379/0"


def test_builds_requested_while_one_runs_coalesce_into_one_more(scaled):
    tmp_path, workers, runner, settings = scaled
    cat = pipeline.Catalogue(settings)
    try:
        pipeline.harvest(cat, pipeline.select_sources(cat, ["lib-a", "lib-c"]))
    finally:
        cat.close()
    first, second, third = (runner.build(requested_by=f"test {n}") for n in range(3))
    workers.start("w1")  # one worker: the three first links run in order, the first chain holding the lock
    wait_idle(runner, workers)
    outcomes = [Job.fetch(i, connection=runner.connection).return_value() for i in (first, second, third)]
    assert outcomes[0]["stage"] == "normalise" and outcomes[0]["normalised"] == 6
    assert [o["status"] for o in outcomes[1:]] == ["coalesced", "coalesced"]
    finished = [Job.fetch(i, connection=runner.connection)
                for i in runner.queue("unioncat-build").finished_job_registry.get_job_ids()]
    index_links = [j for j in finished if j.description.startswith("build: index")]
    assert len(index_links) == 2  # the first chain, and one more for the two requests it coalesced
    assert runner.connection.get("unioncat:build:again") is None
    assert results(settings)["counts"][2] == 5
    # the ledger job on a worker: the snapshot the staff pages read lands in PostgreSQL
    ledger = runner.ledger(requested_by="test")
    wait_idle(runner, workers)
    done = Job.fetch(ledger, connection=runner.connection).return_value()
    cat = pipeline.Catalogue(settings)
    try:
        month, taken_at, figures = LedgerSnapshots(cat.engine).latest()
        live = cat.raw.counts_by_source()
    finally:
        cat.close()
    assert done == {"month": month, "members": len(figures)} and figures["lib-a"]["contributed"] == live["lib-a"] > 0
    assert runner.connection.get("unioncat:queued:ledger") is None


# -- the in-process runner (no Redis): a staff-triggered harvest and a mail server that is down --------------

def test_a_mail_server_down_never_fails_a_harvest_in_the_in_process_runner(tmp_path):
    (tmp_path / "good.mrc").write_bytes(iso2709(make_record("g1", title="A good book")))
    config = {"consortium": {"name": "Test Consortium"},
              "sources": [{"id": "good", "name": "Good Library", "region": "Nanjing", "protocol": "file",
                           "path": "good.mrc"},
                          {"id": "broken", "name": "Broken Library", "region": "Nanjing", "protocol": "file",
                           "path": "missing/broken.mrc"}]}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"UNIONCAT_SMTP_HOST": "127.0.0.1", "UNIONCAT_SMTP_PORT": str(free_port()),  # nothing listens there
           "UNIONCAT_ALERT_TO": "ops@example.org", "UNIONCAT_ALERT_FAILURES": "1"}
    settings = load_settings(env=env, sources_path=str(tmp_path / "sources.yaml"), data_dir=str(tmp_path / "var"))
    cat = pipeline.Catalogue(settings)
    runner = InProcessRunner(cat)
    try:
        assert isinstance(runner, JobRunner) and isinstance(RqRunner.from_url("redis://127.0.0.1:9/0"), JobRunner)
        failed = runner.harvest("broken", requested_by="operator-1")
        runner.wait(60)
        assert runner.job(failed).state == "failed" and "broken.mrc" in runner.job(failed).error
        ok = runner.harvest("good", requested_by="operator-1")
        runner.wait(60)
        job = runner.job(ok)
        assert (job.state, job.error, job.result) == ("finished", None, ["ok"])
        assert "could not mail the harvest alerts" in job.warning and "refused" in job.warning.lower()
        assert runner.status()["failed"] == [{"id": failed, "description": "harvest broken",
                                              "error": runner.job(failed).error,
                                              "ended_at": runner.job(failed).ended_at.isoformat()}]
        # the alert stays unsent, to go out once the mail server is back
        assert [a["key"] for a in OpsStore(cat.engine).unsent_alerts()] == ["failing:broken"]
    finally:
        runner.close()
        cat.close()
    # the command line: the harvest exits 0 and says why no mail went out
    result = CliRunner().invoke(main, ["--sources", str(tmp_path / "sources.yaml"), "--data", str(tmp_path / "var"),
                                       "harvest", "good"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "ALERT" not in result.output
