"""Real headless Chromium for the web tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

``tests/conftest.py`` re-exports these fixtures, so any test module can ask for them:

* ``browser`` — one Chromium per test session (starting one costs about a second);
* ``page`` — a fresh browser context and page per test (own cookies), closed afterwards;
  ``page.unioncat_screenshot(name)`` keeps a full-page PNG in ``UNIONCAT_SCREENSHOTS``
  (default ``.cache/screenshots``, an ignored folder) for the README tour and for failures;
* ``live_server(app)`` — serves a Flask app on a free loopback port in a thread and returns its base URL.

In CI a missing Chromium fails the run; elsewhere the browser tests skip with the reason.
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from services import unavailable

CHROMIUM = os.environ.get("UNIONCAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("UNIONCAT_SCREENSHOTS",
                                  Path(__file__).resolve().parent.parent / ".cache" / "screenshots"))


def _chromium_or_skip() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path:
        return path
    unavailable(f"no Chromium at {CHROMIUM} (make install puts Debian's chromium there)", "browser tests")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def screenshot(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        return path

    pg.unioncat_screenshot = screenshot
    try:
        yield pg
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            try:
                screenshot(f"FAILED-{request.node.name}")
            except Exception:  # noqa: BLE001 - a failed screenshot must not hide the failure
                pass
        context.close()


class LiveServer:
    """A Flask app served by werkzeug on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator:
    servers: list[LiveServer] = []

    def serve(app) -> str:
        server = LiveServer(app)
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Let ``page`` see whether the test failed, to keep a screenshot of the failure."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
