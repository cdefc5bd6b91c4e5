"""A throwaway PostgreSQL cluster for the tests: Debian's ``initdb`` + ``pg_ctl`` on a free loopback port.

``tests/conftest.py`` re-exports the fixtures:

* ``postgres_server`` — one cluster per test session (initdb takes ~2 s); yields its base URL
  ``postgresql://user@127.0.0.1:PORT``;
* ``pg_url`` — a fresh, empty database on that cluster per test (``CREATE DATABASE`` is ~50 ms),
  dropped afterwards.

``initdb``/``pg_ctl`` are taken from PATH or Debian's ``/usr/lib/postgresql/<version>/bin``.
PostgreSQL refuses to run as root.  As root (a fresh CI container) the cluster
is created and started as the ``postgres`` user that Debian's package makes,
through ``runuser``; otherwise as the current user.  In CI a missing
PostgreSQL fails the run; elsewhere the PostgreSQL tests skip with the reason.
``running_postgres()`` is the same server as a context manager, for bench scripts.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import free_port, unavailable


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
    return ["runuser", "-u", "postgres", "--"], "postgres"


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


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a cluster in a temporary folder; yield ``postgresql://role@127.0.0.1:port``; stop and remove it."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    prefix, role = _as_user()
    root = Path(tempfile.mkdtemp(prefix="unioncat-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o700)
    port = free_port()
    try:
        subprocess.run(prefix + [initdb, "-D", str(data), "-U", role, "-A", "trust", "-E", "UTF8", "--no-locale",
                                 "--no-sync"], check=True, capture_output=True)
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sock} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60",
                                 "start"], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}{log}") from None
    try:
        yield f"postgresql://{role}@127.0.0.1:{port}"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
