"""`make demo` serves the staff console with an in-process job runner (demo/cli.py ``demo_app``): the
"Harvest now" button queues a real harvest that runs in the web process, instead of answering "no job
runner is configured"."""
from __future__ import annotations

from demo.cli import demo_app
from staff_env import PASSWORD, login
from test_ledger import ledger_cat  # noqa: F401 - the fixture: three file members, harvested and built
from web.accounts import Accounts


def test_demo_harvest_button_runs_a_harvest_in_process(ledger_cat):  # noqa: F811
    cat = ledger_cat
    Accounts(cat.engine).add("operator-1", PASSWORD, "operator")
    before = len(cat.raw.runs("lib-a"))
    app, runner = demo_app(cat)
    try:
        client = app.test_client()
        token = login(client, "operator-1")
        page = client.get("/staff/").text
        assert "no job runner is configured" not in page
        done = client.post("/staff/source/lib-a/harvest", data={"csrf_token": token})
        assert done.status_code == 302
        flashed = client.get("/staff/").text
        assert "Harvest of lib-a queued as job local-1" in flashed
        runner.wait(timeout=120)
        assert runner.job("local-1").state == "finished", runner.job("local-1").error
        runs = cat.raw.runs("lib-a")
        assert len(runs) == before + 1 and runs[0]["status"] == "ok"
    finally:
        runner.close()
