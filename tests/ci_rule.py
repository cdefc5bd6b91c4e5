"""The CI rule of ``services.py`` as a pytest plugin: in CI (``CI`` set) a skipped test is a failed one.

``services.unavailable`` already fails in CI instead of skipping; this hook holds the rule for every
other way a test can skip (a bare ``pytest.skip``, ``skipif``, ``importorskip``), so CI cannot go green
by skipping what it was meant to prove, whoever writes the next test.  Expected failures (``xfail``)
are left alone.
"""
from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI ({reason}): a test whose service or data cannot run fails in CI"
