"""The staff area against real peers: accounts and roles, actions through the in-process job runner,
the safety stop, availability from real probes, alert mail into a real SMTP server, /metrics."""
from __future__ import annotations

import json
import re

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from harvester.ops import OpsStore
from marc_fixtures import iso2709, make_record
from staff_env import PASSWORD, login, staff_env, write_dump, zebra  # noqa: F401 - fixtures
from unioncat import pipeline
from unioncat.alerts import check_alerts
from unioncat.cli import main
from unioncat.settings import load_settings
from publish.zebra_server import free_port
from web.accounts import FREE_FAILURES


def cli(env, *args, **environ):
    result = CliRunner().invoke(main, [*env.cli_args(), *args], env=environ or None, catch_exceptions=False)
    return result


def test_unauthenticated_access_is_refused(staff_env):
    client = staff_env.make_app().test_client()
    for path in ("/staff/", "/staff/availability", "/staff/audit", "/staff/source/good"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login"), path
    assert client.get("/staff/status.json").status_code == 401
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text).group(1)
    assert client.post("/staff/source/good/harvest", data={"csrf_token": token}).status_code == 401
    assert staff_env.runner.status()["queued"] == 0 and not staff_env.cat.raw.runs()


def test_post_without_csrf_token_is_refused(staff_env):
    client = staff_env.make_app().test_client()
    login(client, "operator-1")
    assert client.post("/staff/source/good/harvest").status_code == 400
    assert client.post("/staff/source/good/harvest", data={"csrf_token": "forged"}).status_code == 400
    assert staff_env.runner.status()["queued"] == 0 and not staff_env.cat.raw.runs()


def test_accounts_from_the_cli_roles_and_audit(staff_env):
    result = cli(staff_env, "staff", "add-user", "chief", "--role", "admin", UNIONCAT_NEW_PASSWORD="s3cret-enough!")
    assert result.exit_code == 0, result.output
    assert "short" in cli(staff_env, "staff", "add-user", "x", UNIONCAT_NEW_PASSWORD="short").output
    listing = cli(staff_env, "staff", "list").output
    assert "chief" in listing and "admin" in listing and "viewer-1" in listing
    client = staff_env.make_app().test_client()
    token = login(client, "viewer-1")
    assert "Harvest now" not in client.get("/staff/").text  # a viewer sees no action buttons
    response = client.post("/staff/source/good/harvest", data={"csrf_token": token})
    assert response.status_code == 403 and "viewer" in response.text
    assert client.post("/staff/build", data={"csrf_token": token, "reindex": "1"}).status_code == 403
    assert "no member &#39;nosuch&#39;" in client.get("/staff/source/nosuch").text
    assert staff_env.runner.status()["queued"] == 0 and not staff_env.cat.raw.runs()
    admin = staff_env.make_app().test_client()
    login(admin, "chief", "s3cret-enough!")
    log = admin.get("/staff/audit.json").get_json()["audit"]
    assert [(e["user"], e["action"]) for e in log[:4]] == [
        ("chief", "login"), ("viewer-1", "refused"), ("viewer-1", "refused"), ("viewer-1", "login")]


def test_bootstrap_password_signs_in_as_admin(staff_env):
    client = staff_env.make_app(STAFF_PASSWORD="bootstrap-password").test_client()
    login(client, "admin", "bootstrap-password")
    assert client.get("/staff/status.json").status_code == 200


def test_sign_in_is_rate_limited(staff_env):
    client = staff_env.make_app().test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text).group(1)
    for _ in range(FREE_FAILURES):
        bad = client.post("/staff/login", data={"username": "operator-1", "password": "guess", "csrf_token": token})
        assert bad.status_code == 401
    right = client.post("/staff/login", data={"username": "operator-1", "password": PASSWORD, "csrf_token": token})
    assert right.status_code == 429 and "Too many failed sign-ins" in right.text
    # another account from another address is not locked out by these
    other = staff_env.make_app().test_client()
    login(other, "viewer-1")


def test_harvest_from_the_page_held_deletion_and_approval(staff_env):
    client = staff_env.make_app().test_client()
    token = login(client, "operator-1")
    response = client.post("/staff/source/good/harvest", data={"csrf_token": token})
    assert response.status_code == 302
    staff_env.runner.wait(60)
    runs = staff_env.cat.raw.runs("good")
    assert runs[0]["status"] == "ok" and runs[0]["added"] == 12
    client.post("/staff/build", data={"csrf_token": token})  # keeps a quality report with that run
    staff_env.runner.wait(60)
    quality = client.get("/staff/source/good.json").get_json()["quality"]
    assert quality["run_id"] == runs[0]["id"] and quality["records"] == 12 and quality["without_title"] == 0
    assert "Data quality" in client.get("/staff/source/good").text
    # the member's dump shrinks to one record: 11 of 12 would go — held, not applied
    write_dump(staff_env.root / "good.mrc", 1)
    client.post("/staff/source/good/harvest", data={"csrf_token": token, "full": "1"})
    staff_env.runner.wait(60)
    assert staff_env.cat.raw.runs("good")[0]["status"] == "held"
    assert staff_env.cat.raw.count("good") == 12
    overview = client.get("/staff/status.json").get_json()
    assert overview["sources"][0]["id"] == "good" and overview["sources"][0]["attention"] == "held"
    page = client.get("/staff/source/good").text
    assert "11 of 12 records would be deleted" in page and "g012" in page
    hold_id = staff_env.cat.raw and OpsStore(staff_env.cat.engine).holds("good")[0].id
    assert client.post(f"/staff/hold/{hold_id}/approve", data={"csrf_token": token}).status_code == 302
    assert staff_env.cat.raw.count("good") == 1
    staff_env.runner.wait(60)  # the approval queued a build
    actions = [(e["action"], e["target"]) for e in client.get("/staff/audit.json").get_json()["audit"]]
    assert actions[:4] == [("approve-deletions", "good"), ("full-harvest", "good"), ("build", None),
                           ("harvest", "good")]


def test_pause_skips_the_member_until_resumed(staff_env):
    client = staff_env.make_app().test_client()
    token = login(client, "operator-1")
    client.post("/staff/source/good/pause", data={"csrf_token": token, "paused": "1", "reason": "ILS migration"})
    result = cli(staff_env, "harvest", "good")
    assert "skipped: paused by operator-1" in result.output and "ILS migration" in result.output
    assert not staff_env.cat.raw.runs("good")
    response = client.post("/staff/source/good/harvest", data={"csrf_token": token}, follow_redirects=True)
    assert "good is paused: resume it before harvesting it" in response.text
    rows = {s["id"]: s for s in client.get("/staff/status.json").get_json()["sources"]}
    assert rows["good"]["attention"] == "paused" and rows["good"]["paused"]["reason"] == "ILS migration"
    client.post("/staff/source/good/pause", data={"csrf_token": token, "paused": "0"})
    assert cli(staff_env, "harvest", "good").exit_code == 0
    assert staff_env.cat.raw.runs("good")[0]["status"] == "ok"


def test_availability_table_matches_real_probes(staff_env):
    cli(staff_env, "harvest", "good", "seu")  # sample records for the OPAC links
    result = cli(staff_env, "sources", "check")
    assert result.exit_code == 1  # some members are down
    assert "3 of 6 endpoints available; OPAC links: 1 of 2 answer" in result.output
    client = staff_env.make_app().test_client()
    login(client, "viewer-1")
    data = client.get("/staff/availability.json").get_json()
    members = {m["source"]: m for m in data["members"]}
    # endpoints: the file dump, the OAI provider and the Zebra answer; the dead ports and missing dump do not;
    # seu's OAI-PMH is up but its OPAC deep link is dead: its endpoint counts as available, its OPAC apart
    assert {s: (m["ok"], m["opac_ok"]) for s, m in members.items()} == {
        "good": (True, True), "seu": (True, False), "broken": (False, None), "dead": (False, None),
        "zlive": (True, None), "zdead": (False, None)}
    assert members["seu"]["available"] and not members["dead"]["available"]
    table = {r["region"]: (r["members"], r["available"], r["unavailable"], r["rate"]) for r in data["regions"]}
    assert table == {"Nanjing": (2, 2, 0, 100.0), "Suzhou": (2, 0, 2, 0.0), "Wuxi": (2, 1, 1, 50.0)}
    assert data["total"] == {"region": "Total", "members": 6, "available": 3, "unavailable": 3, "rate": 50.0}
    opac = {r["region"]: (r["members"], r["available"], r["unavailable"], r["rate"]) for r in data["opac"]["regions"]}
    assert opac == {"Nanjing": (2, 1, 1, 50.0)}
    assert data["opac"]["total"] == {"region": "Total", "members": 2, "available": 1, "unavailable": 1, "rate": 50.0}
    # one readable line per error, the raw text kept; members listed by name, the unavailable first
    assert members["dead"]["plain"].startswith("connection refused: 127.0.0.1:")
    assert members["seu"]["opac_plain"].startswith("connection refused: 127.0.0.1:")
    assert "Errno" in members["seu"]["opac_message"] or "refused" in members["seu"]["opac_message"]
    assert members["broken"]["plain"].endswith("no such file or folder")
    assert [m["source"] for m in data["members"]][:3] == ["broken", "dead", "zdead"]
    cli(staff_env, "sources", "check", "good", "zlive")
    history = client.get("/staff/availability.json").get_json()["history"]
    assert [h["total"]["rate"] for h in history] == [100.0, 50.0]
    assert [h["opac_total"]["rate"] for h in history] == [100.0, 50.0]
    html = client.get("/staff/availability").text
    assert "<th scope=\"row\">Total</th>" in html and "50.0%" in html and "OPAC deep links" in html


@pytest.fixture
def smtp_server():
    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.hostname, controller.port, inbox
    finally:
        controller.stop()


def test_alert_mail_once_per_failure_streak(staff_env, smtp_server):
    host, port, inbox = smtp_server
    settings = load_settings(env={"UNIONCAT_SMTP_HOST": host, "UNIONCAT_SMTP_PORT": str(port),
                                  "UNIONCAT_ALERT_TO": "ops@example.org, duty@example.org",
                                  "UNIONCAT_SMTP_FROM": "unioncat@example.org"},
                             sources_path=str(staff_env.sources_path), data_dir=str(staff_env.root / "var"))
    broken = [staff_env.cat.sources.source("broken")]
    for attempt in range(1, 5):
        pipeline.harvest(staff_env.cat, broken)
        sent = check_alerts(staff_env.cat, settings)
        assert len(sent) == (1 if attempt == 3 else 0), attempt
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail.rcpt_tos == ["ops@example.org", "duty@example.org"]
    body = mail.content.decode()
    assert "Broken College Library (broken): the last 3 harvests failed" in body and "failing" in body
    client = staff_env.make_app().test_client()
    login(client, "viewer-1")
    page = client.get("/staff/").text
    assert 'class="banner banner-failing"' in page and "the last 4 harvests failed" in page
    listing = cli(staff_env, "alerts")
    assert listing.exit_code == 1 and "failing  Broken College Library (broken): the last 4 harvests failed" in \
        listing.output and "[mailed " in listing.output
    # a stuck harvester: nothing ran for three days; `unioncat alerts` (cron) is what notices
    from datetime import datetime, timedelta, timezone
    pipeline.harvest(staff_env.cat, [staff_env.cat.sources.source("good")])
    check_alerts(staff_env.cat, settings, now=datetime.now(timezone.utc) + timedelta(days=3))
    assert len(inbox.messages) == 2 and "good): last successful harvest 3.0 days ago" in \
        inbox.messages[1].content.decode()
    assert client.get("/staff/").headers["Cache-Control"] == "no-store"
    # recovery closes the alert; a new streak mails again
    OpsStore(staff_env.cat.engine).sync_alerts({})
    check_alerts(staff_env.cat, settings)
    assert len(inbox.messages) == 3 and "broken" in inbox.messages[2].content.decode()


def test_a_mail_server_that_is_down_is_shown_to_staff_until_a_mail_goes_out(staff_env, smtp_server):
    host, port, inbox = smtp_server
    down = free_port()  # nothing listens there: the connection is refused, as by a mail server that is down

    def settings(smtp_port: int):
        return load_settings(env={"UNIONCAT_SMTP_HOST": host, "UNIONCAT_SMTP_PORT": str(smtp_port),
                                  "UNIONCAT_ALERT_TO": "ops@example.org"},
                             sources_path=str(staff_env.sources_path), data_dir=str(staff_env.root / "var"))
    broken = [staff_env.cat.sources.source("broken")]
    for _ in range(3):
        pipeline.harvest(staff_env.cat, broken)
    with pytest.raises(OSError):
        check_alerts(staff_env.cat, settings(down))
    ops = OpsStore(staff_env.cat.engine)
    problem = ops.mail_problem()
    assert problem["error"].startswith(f"{host}:{down}: ")
    assert [a["kind"] for a in ops.unsent_alerts()] == ["failing"] and ops.alerts()[0]["kind"] == "failing"
    client = staff_env.make_app().test_client()
    login(client, "viewer-1")
    page = client.get("/staff/").text
    assert 'class="banner banner-mail"' in page and f"{host}:{down}: " in page and "stay unsent" in page
    assert client.get("/staff/status.json").get_json()["mail_problem"]["error"] == problem["error"]
    assert "告警邮件无法发送" in client.get("/staff/?lang=zh").text
    assert _gauge(client, "unioncat_alert_mail_failing_since_timestamp_seconds") == problem["since"].timestamp()
    with pytest.raises(OSError):  # still down: the banner keeps the first failure's time
        check_alerts(staff_env.cat, settings(down))
    assert ops.mail_problem()["since"] == problem["since"]
    assert [a["kind"] for a in check_alerts(staff_env.cat, settings(port))] == ["failing"]
    assert len(inbox.messages) == 1 and ops.mail_problem() is None
    assert "banner-mail" not in client.get("/staff/").text
    assert client.get("/staff/status.json").get_json()["mail_problem"] is None
    assert _gauge(client, "unioncat_alert_mail_failing_since_timestamp_seconds") == 0


def _gauge(client, name: str) -> float:
    (line,) = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def test_metrics_and_status_json(staff_env):
    cli(staff_env, "harvest", "good", "broken")
    client = staff_env.make_app().test_client()
    client.get("/search?q=good")
    client.get("/search.json?q=book")
    text = client.get("/metrics").text
    assert 'unioncat_harvest_runs_total{source="broken",status="failed"} 1.0' in text
    assert 'unioncat_records{source="good"} 12.0' in text
    assert "unioncat_search_latency_seconds_count 2.0" in text
    assert 'unioncat_jobs{state="queued"} 0.0' in text and "unioncat_held_deletions 0.0" in text
    result = cli(staff_env, "status", "--json")
    data = json.loads(result.output)
    login(client, "viewer-1")
    page = client.get("/staff/status.json").get_json()
    assert [s["id"] for s in data["sources"]] == [s["id"] for s in page["sources"]]
    assert data["sources"][0]["id"] == "broken" and data["sources"][0]["attention"] == "failing"
    for key in ("health", "trend", "attention", "last_run", "paused", "held_deletion"):
        assert data["sources"][0][key] == page["sources"][0][key]
    assert {s["id"]: s["trend"] for s in data["sources"]}["good"] == [12]


def test_retry_quarantined_records(staff_env):
    dump = staff_env.root / "good.mrc"
    dump.write_bytes(dump.read_bytes() + iso2709(make_record("g001", title="The same 001 again")))
    cli(staff_env, "harvest", "good")
    item = staff_env.cat.raw.quarantined("good")[0]
    client = staff_env.make_app().test_client()
    token = login(client, "operator-1")
    page = client.get("/staff/source/good").text
    assert "Retry after a fix" in page and "duplicate local id &#39;g001&#39;" in page
    response = client.post(f"/staff/quarantine/{item['id']}/retry", data={"csrf_token": token},
                           follow_redirects=True)
    assert "full re-harvest job" in response.text
    staff_env.runner.wait(60)
    assert staff_env.cat.raw.runs("good")[0]["full"]


def test_stale_member_raises_one_alert_until_it_recovers(staff_env):
    from datetime import datetime, timedelta, timezone

    from harvester.health import alert_conditions, health

    cli(staff_env, "harvest", "good")  # daily schedule
    sources = staff_env.cat.sources.sources
    later = datetime.now(timezone.utc) + timedelta(days=1, hours=1)
    state = health(staff_env.cat.engine, sources, later)["good"]
    assert state.overdue and not state.stale and 3500 < state.lag_s < 3700
    much_later = datetime.now(timezone.utc) + timedelta(days=3)
    states = health(staff_env.cat.engine, sources, much_later)
    assert states["good"].stale
    alerts = alert_conditions(sources, states)
    assert "stale:good" in alerts and "last successful harvest 3.0 days ago, schedule daily" in alerts["stale:good"][2]
    ops = OpsStore(staff_env.cat.engine)
    assert ops.sync_alerts(alerts) == ["stale:good"] and ops.sync_alerts(alerts) == []
    assert "stale:good" not in alert_conditions(sources, states, paused={"good"})  # paused: somebody decided
    cli(staff_env, "sources", "pause", "good", "--reason", "moving")
    assert "good" in ops.paused()
    assert ("cli:" in staff_env.make_app().extensions["unioncat"].accounts.audit_log(1)[0]["user"])
