"""The test servers end with the test run that started them, even a killed one (``services.ends_with_us``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from peers.postgres import postmaster
from services import ends_with_us

UNPRIVILEGED = 65534

# a stand-in for a test run: starts a long "server" as a fixture would, says its pid, then waits to be killed
RUN = """
import subprocess, sys, time
sys.path.insert(0, {tests!r})
from services import ends_with_us
server = subprocess.Popen(ends_with_us({cmd!r}), start_new_session=True)
print(server.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _server_outlives_a_killed_run(cmd: list[str]) -> bool:
    tests = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.Popen([sys.executable, "-c", RUN.format(tests=tests, cmd=cmd)], stdout=subprocess.PIPE, text=True)
    server = int(run.stdout.readline())
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/proc/{server}/exe") or "sleep" not in os.readlink(f"/proc/{server}/exe"):
        if time.monotonic() > deadline:         # still setpriv or the shell, not yet the server
            break
        time.sleep(0.05)
    assert _alive(server)
    return _outlives(run, server)


def _outlives(run: subprocess.Popen, server: int, wait: float = 20) -> bool:
    """SIGKILL the stand-in run; whether its server is still alive ``wait`` seconds on (then killed)."""
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + wait
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    outlived = _alive(server)
    if outlived:
        os.kill(server, signal.SIGKILL)
    return outlived


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="setpriv and the parent-death signal are Linux's")
def test_a_server_dies_with_the_killed_test_run_that_started_it():
    assert not _server_outlives_a_killed_run(["sleep", "120"])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root (CI runs as root)")
def test_a_server_dropped_from_root_to_nobody_dies_with_the_killed_run_too():
    """Elasticsearch refuses root, so its fixture runs it through ``setpriv --reuid``: a change of user
    clears the parent-death signal, so the flag must ride on that same ``setpriv``."""
    drop = ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]
    assert ends_with_us([*drop, "sleep", "1"])[:3] == ["setpriv", "--pdeathsig", "SIGTERM"]
    assert not _server_outlives_a_killed_run([*drop, "sleep", "120"])


PG_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from peers.postgres import running_postgres
with running_postgres() as url:
    print(url, flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="setpriv and the parent-death signal are Linux's")
def test_the_postgres_cluster_dies_with_the_killed_run_that_started_it():
    """``pg_ctl`` daemonised the server, so a killed test run or bench left PostgreSQL running; now it is our
    child through ``ends_with_us`` (from root, on the ``setpriv`` that drops to ``postgres``)."""
    import shutil

    tests = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.Popen([sys.executable, "-c", PG_RUN.format(tests=tests)], stdout=subprocess.PIPE, text=True)
    url = run.stdout.readline().strip()
    assert url.startswith("postgresql://"), "the stand-in run did not start PostgreSQL"
    pid, data = postmaster(int(url.rsplit(":", 1)[1]))
    outlived = _outlives(run, pid)
    shutil.rmtree(os.path.dirname(data), ignore_errors=True)    # the killed run could not remove its folder
    assert not outlived
