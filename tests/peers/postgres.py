"""A throwaway PostgreSQL cluster for the tests: Debian's ``initdb`` + ``postgres`` on a free loopback port.

``tests/conftest.py`` re-exports the fixtures:

* ``postgres_server`` — one cluster per test session (initdb takes ~2 s); yields its base URL
  ``postgresql://user@127.0.0.1:PORT``;
* ``pg_url`` — a fresh, empty database on that cluster per test (``CREATE DATABASE`` is ~50 ms),
  dropped afterwards.

``initdb``/``postgres`` are taken from PATH or Debian's ``/usr/lib/postgresql/<version>/bin``.
PostgreSQL refuses to run as root.  As root (a fresh CI container) the cluster
is created and started as the ``postgres`` user that Debian's package makes,
through ``setpriv``; otherwise as the current user.  In CI a missing
PostgreSQL fails the run; elsewhere the PostgreSQL tests skip with the reason.
``running_postgres()`` is the same server as a context manager, for bench scripts.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import ends_with_us, free_port, stop_process, unavailable


def _missing(reason: str) -> None:
    unavailable(reason + " (make install puts it there)", "the PostgreSQL tests")


def _as_user() -> tuple[list[str], str]:
    """The command prefix that runs PostgreSQL binaries, and the role name initdb creates."""
    if os.geteuid() != 0:
        return [], pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no 'postgres' user to run PostgreSQL as "
                           "(Debian's postgresql package creates it)") from None
    # setpriv, not runuser: ``ends_with_us`` puts the parent-death signal on it, after the change of user
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"], "postgres"


def _binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, else Debian's versioned folder (not on PATH by default)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise FileNotFoundError(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin (Debian: postgresql; "
                            "make install)")


def _ready(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until the server takes connections; raise with its log if it exits or never does."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url + "/postgres", connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                stop_process(server)
                raise RuntimeError("PostgreSQL did not start: " + log.read_text(errors="replace")) from None
            time.sleep(0.1)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a cluster in a temporary folder; yield ``postgresql://role@127.0.0.1:port``; stop and remove it.

    The server runs in the foreground as our child (not daemonised by ``pg_ctl``), through
    ``ends_with_us``: a killed test run or bench takes it down instead of leaving it running.
    """
    initdb, postgres = _binary("initdb"), _binary("postgres")
    prefix, role = _as_user()
    root = Path(tempfile.mkdtemp(prefix="unioncat-pg-"))
    data, sock, log = root / "data", root / "sock", root / "log"
    sock.mkdir()
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o700)
    port = free_port()
    try:
        subprocess.run(prefix + [initdb, "-D", str(data), "-U", role, "-A", "trust", "-E", "UTF8", "--no-locale",
                                 "--no-sync"], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from None
    options = ["listen_addresses=127.0.0.1", f"port={port}", f"unix_socket_directories={sock}", "fsync=off",
               "synchronous_commit=off", "full_page_writes=off", "max_connections=100"]
    with open(log, "wb") as out:
        server = subprocess.Popen(ends_with_us(prefix + [postgres, "-D", str(data)]
                                              + [arg for o in options for arg in ("-c", o)]),
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"postgresql://{role}@127.0.0.1:{port}"
    try:
        _ready(url, server, log)
        yield url
    finally:
        server.send_signal(signal.SIGQUIT)      # immediate shutdown, as ``pg_ctl -m immediate``
        stop_process(server)
        shutil.rmtree(root, ignore_errors=True)


def postmaster(port: int) -> tuple[int, Path]:
    """The pid and data folder of the PostgreSQL server listening on ``port``, found in /proc (its backends
    are its children: a bench counts their CPU under it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if cmd[0].endswith("postgres") and f"port={port}" in cmd and "-D" in cmd:
                return int(entry.name), Path(cmd[cmd.index("-D") + 1])
    raise LookupError(f"no PostgreSQL server on port {port}")


def create_database(server_url: str, name: str | None = None) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg

    name = name or f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


def drop_database(server_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    try:
        with running_postgres() as url:
            yield url
    except (FileNotFoundError, RuntimeError) as exc:
        _missing(str(exc))


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server)
    yield url
    drop_database(postgres_server, url)
