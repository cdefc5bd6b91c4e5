"""The staff pages in a real Chromium: sign in, the overview with the failing member first, a harvest
triggered from the page and its run appearing, the availability table; screenshots for the README."""
from __future__ import annotations

import time

from click.testing import CliRunner

from staff_env import PASSWORD, staff_env, zebra  # noqa: F401 - fixtures
from unioncat.cli import main


def _sign_in(page, base: str, name: str) -> None:
    page.goto(base + "/staff/")
    assert "/staff/login" in page.url  # unauthenticated: sent to the sign-in form
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click(".login button[type=submit]")
    page.wait_for_selector("h1#status-title")


def test_dashboard_failing_first_and_harvest_from_the_page(staff_env, page, live_server):
    runner = CliRunner()
    for _ in range(3):  # a member failing three times in a row, and a healthy one with a trend
        runner.invoke(main, [*staff_env.cli_args(), "harvest", "broken", "good"])
    base = live_server(staff_env.make_app())
    _sign_in(page, base, "operator-1")
    rows = page.locator("table.status tbody tr")
    assert rows.first.get_attribute("data-source") == "broken"
    assert "failing" in rows.first.locator(".state").inner_text()
    assert page.locator(".banner-failing").inner_text().startswith("Alert:")
    assert page.locator("tr[data-source=good] svg.spark").count() == 1

    seu = page.locator("tr[data-source=seu]")
    assert "never harvested" in seu.inner_text()
    seu.locator("details.menu summary").click()  # the row's actions menu
    seu.locator("button.harvest-now").click()
    assert "Harvest of seu queued as job" in page.locator(".flash-ok").inner_text()
    deadline = time.monotonic() + 30
    while ("never harvested" in page.locator("tr[data-source=seu]").inner_text()
           or page.locator("tr[data-source=seu] .status-running").count()):  # the run shows up as running first
        assert time.monotonic() < deadline, "the harvest's run did not appear"
        time.sleep(0.3)
        page.reload()
    assert "ok" in page.locator("tr[data-source=seu] .status-ok").inner_text()
    page.locator("tr[data-source=seu] th a").click()
    assert page.locator("table.runs tbody tr").count() == 1
    assert "5 / 0 / 0 / 0 / 0" in page.locator("table.runs tbody tr").first.inner_text()
    assert "harvest" in page.locator("ul.audit").inner_text()
    page.click("text=Sources")
    page.unioncat_screenshot("staff-dashboard")


def test_availability_page_and_viewer_cannot_act(staff_env, page, live_server):
    runner = CliRunner()
    runner.invoke(main, [*staff_env.cli_args(), "harvest", "good", "seu"])
    runner.invoke(main, [*staff_env.cli_args(), "sources", "check"])
    base = live_server(staff_env.make_app())
    _sign_in(page, base, "viewer-1")
    assert page.locator("button.harvest-now").count() == 0  # a viewer gets no action buttons
    page.click("text=Availability")
    total = page.locator("table.availability.endpoints tfoot tr").inner_text().split()
    assert total == ["Total", "6", "3", "3", "50.0%"]  # seu's endpoint answers; only its OPAC link is dead
    assert page.locator("table.availability.opacs tfoot tr").inner_text().split() == ["Total", "2", "1", "1", "50.0%"]
    dead = page.locator("tr[data-source=dead] td.endpoint")
    assert dead.locator(".plain").inner_text().startswith("connection refused: 127.0.0.1:")
    assert not dead.locator("pre").is_visible()
    dead.locator("summary").click()  # the raw detail one click away
    assert dead.locator("pre").is_visible()
    regions = [r.inner_text().split("\t") for r in page.locator("table.availability.endpoints tbody tr").all()]
    assert [r[0] for r in regions] == ["Nanjing", "Suzhou", "Wuxi"]
    page.unioncat_screenshot("staff-availability")
