"""A real Redis for the job tests: Debian's ``redis-server`` on a free loopback port, no persistence.

``tests/conftest.py`` re-exports the fixtures:

* ``redis_server`` — one server per test session; yields its URL ``redis://127.0.0.1:PORT``;
* ``redis_url`` — that server, flushed before each test (``/0``).

In CI a missing redis-server fails the run; elsewhere the tests skip with the reason.
``running_redis()`` is the same server as a context manager, for bench scripts.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from services import ends_with_us, free_port, stop_process, unavailable


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not on PATH (Debian: redis-server; make install)")
    import redis

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="unioncat-redis-")
    proc = subprocess.Popen(ends_with_us([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", workdir, "--protected-mode", "yes"]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    raise RuntimeError(f"redis-server did not start on port {port}: {out}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    try:
        with running_redis() as url:
            yield url
    except (FileNotFoundError, RuntimeError) as exc:
        unavailable(str(exc), "the Redis tests")


@pytest.fixture
def redis_url(redis_server: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server
