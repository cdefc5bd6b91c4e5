"""What every fixture of a real peer needs: a free port, a cache folder, and the CI rule.

The rule: a test that needs a service (Zebra, Elasticsearch, PostgreSQL, Redis, Chromium, the OIDC and CAS
servers, the shared corpus) *fails* in CI when the service cannot run, and skips with the reason elsewhere —
CI must never go green by skipping what it was meant to prove.
``ci_rule.py`` (a plugin ``conftest.py`` loads) holds the same rule for every other kind of skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from publish.zebra_server import free_port  # noqa: F401 - one free-port helper for the tests and the demo

PROJECT = Path(__file__).resolve().parent.parent


def cache_dir(name: str) -> Path:
    """``$UNIONCAT_CACHE/name`` (default ``.cache/name``): downloads kept between runs, never committed."""
    return Path(os.environ.get("UNIONCAT_CACHE", PROJECT / ".cache")) / name


def ends_with_us(cmd: list[str]) -> list[str]:
    """``cmd`` run so that it gets SIGTERM when the process that started it dies (``setpriv --pdeathsig``).

    ``stop_process`` ends a server when a fixture finishes; a test run that is killed (a timeout, Ctrl-C
    twice, SIGKILL) never gets there, and its servers ran on for hours — two Elasticsearch JVMs did.  The
    kernel keeps the parent-death signal across ``exec`` but clears it when the user changes, so a command
    that already starts with ``setpriv`` (dropping root) gets the flag on that ``setpriv``, which sets it
    after the change.  Without ``setpriv`` (not Linux) the command is returned unchanged.
    """
    if cmd and Path(cmd[0]).name == "setpriv":
        return [cmd[0], "--pdeathsig", "SIGTERM", *cmd[1:]]
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGTERM", *cmd] if setpriv else cmd


def stop_process(process: subprocess.Popen, grace: float = 10) -> None:
    """Ask a server to stop (SIGTERM); kill it when it has not stopped after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def unavailable(reason: str, what: str = "these tests") -> NoReturn:
    """Fail in CI (``CI`` set), skip elsewhere, with the reason either way."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} — {what} must run in CI", pytrace=False)
    pytest.skip(reason)
