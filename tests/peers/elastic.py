"""A real Elasticsearch node for the tests: one per session, on a free loopback port.

Elasticsearch is neither in Debian nor on PyPI; Maven Central serves the small "integ-test"
distribution (no bundled JDK, no x-pack) as
``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``.  The fixture fetches it
with ``mvn dependency:copy`` into ``$UNIONCAT_CACHE/elasticsearch`` (default ``.cache/``), unzips it
once, and starts one single-node cluster with a 512 MiB heap and its data in a temporary folder.
Elasticsearch 9 needs Java 21 or newer: ``UNIONCAT_ES_JAVA_HOME``, else Temurin 25 where the
machine has it, else ``JAVA_HOME``.

Fixtures (re-exported by ``tests/conftest.py``):

* ``elasticsearch`` — the running :class:`ElasticNode` (``.url``, ``.version``, ``.client()``);
* ``elasticsearch_url`` — just its URL.

``UNIONCAT_TEST_ES_URL`` points the tests at a cluster you already run instead.  When the node
cannot start, the tests fail with the reason in CI (``CI`` set) and are skipped elsewhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from services import ends_with_us, free_port, stop_process, unavailable

ES_VERSION = os.environ.get("UNIONCAT_TEST_ES_VERSION", "9.2.0")
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
JAVA_CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-21-jdk-amd64")
HEAP = "-Xms512m -Xmx512m"
START_TIMEOUT = 120.0
UNPRIVILEGED = 65534  # nobody/nogroup
REPO = Path(__file__).resolve().parent.parent


class ElasticUnavailable(RuntimeError):
    """Elasticsearch could not be fetched or started; the message says why and what to install."""


def cache_dir() -> Path:
    return Path(os.environ.get("UNIONCAT_CACHE") or REPO / ".cache") / "elasticsearch"


def java_home() -> str:
    for candidate in (os.environ.get("UNIONCAT_ES_JAVA_HOME"), *JAVA_CANDIDATES, os.environ.get("JAVA_HOME")):
        if candidate and Path(candidate, "bin", "java").exists():
            return candidate
    raise ElasticUnavailable("no Java 21+ found for Elasticsearch 9: set UNIONCAT_ES_JAVA_HOME "
                             f"(looked in {', '.join(JAVA_CANDIDATES)} and JAVA_HOME)")


def distribution(version: str = ES_VERSION) -> Path:
    """The unzipped distribution's home folder, fetched through Maven on first use."""
    cache = cache_dir()
    home = cache / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").exists():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"elasticsearch-{version}.zip"
    if not archive.exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ElasticUnavailable("Maven (mvn) is needed to fetch Elasticsearch: apt-get install maven")
        cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT.format(version=version)}",
               f"-DoutputDirectory={cache}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tempfile.gettempdir())
        if proc.returncode != 0 or not archive.exists():
            raise ElasticUnavailable(f"mvn could not fetch Elasticsearch {version}: "
                                     f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
    partial = cache / f".unzip-{version}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(partial)
    extracted = next(partial.iterdir())
    for script in (extracted / "bin").iterdir():
        script.chmod(0o755)
    for native in extracted.rglob("*"):  # zipfile drops the executable bits of bundled tools
        if native.is_file() and native.parent.name == "bin":
            native.chmod(0o755)
    if not home.exists():
        extracted.rename(home)
    shutil.rmtree(partial, ignore_errors=True)
    return home


class ElasticNode:
    """One running single-node cluster; :meth:`stop` ends it and removes its data."""

    def __init__(self, home: Path, workdir: Path):
        self.home = home
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.version = ""
        self.process: subprocess.Popen | None = None
        self.log = workdir / "stdout.log"

    def start(self) -> "ElasticNode":
        # the node reads its config folder; give it a private copy so parallel sessions don't collide
        config = self.workdir / "config"
        shutil.copytree(self.home / "config", config)
        settings = {
            "cluster.name": f"unioncat-test-{os.getpid()}",
            "node.name": "node-1",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": "0",
            "path.data": str(self.workdir / "data"),
            "path.logs": str(self.workdir / "logs"),
            # a shared build machine's disk may be fuller than the default watermarks allow
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
            "xpack.security.enabled": "false",  # the test node speaks plain HTTP on loopback
        }
        (self.workdir / "tmp").mkdir()
        env = {**os.environ, "ES_JAVA_HOME": java_home(), "ES_PATH_CONF": str(config),
               "ES_JAVA_OPTS": HEAP, "ES_TMPDIR": str(self.workdir / "tmp"), "HOME": str(self.workdir)}
        env.pop("JAVA_HOME", None)
        cmd = [str(self.home / "bin" / "elasticsearch"), *(f"-E{k}={v}" for k, v in settings.items())]
        if os.geteuid() == 0:
            # Elasticsearch refuses to run as root (CI and these machines run as root): drop to nobody
            drop = ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups"]
            if subprocess.run([*drop, "test", "-r", str(self.home / "lib")]).returncode != 0:
                # the cache sits in a folder nobody cannot enter (a root home): run a private copy
                shutil.copytree(self.home, self.workdir / "home", symlinks=True)
                cmd[0] = str(self.workdir / "home" / "bin" / "elasticsearch")
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, UNPRIVILEGED, UNPRIVILEGED, follow_symlinks=False)
            cmd = [*drop, *cmd]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(ends_with_us(cmd), stdout=out, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.workdir, start_new_session=True)
        self._wait_green()
        return self

    def _wait_green(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.tail()
                self.stop()
                raise ElasticUnavailable(f"Elasticsearch exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_cluster/health?wait_for_status=green&timeout=2s",
                                            timeout=5) as resp:
                    if b'"status":"green"' in resp.read():
                        # GET / (the "main" action) is not in the integ-test distribution; ask the node
                        with urllib.request.urlopen(f"{self.url}/_nodes/_local?filter_path=nodes.*.version",
                                                    timeout=5) as info:
                            nodes = json.loads(info.read())["nodes"]
                            self.version = next(iter(nodes.values()))["version"]
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        tail = self.tail()
        self.stop()
        raise ElasticUnavailable(f"Elasticsearch not green after {START_TIMEOUT:.0f}s ({last}):\n{tail}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def client(self):
        from elasticsearch import Elasticsearch
        return Elasticsearch(self.url, request_timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=30)
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class ExternalNode:
    """A cluster the developer runs (``UNIONCAT_TEST_ES_URL``): used as is, never stopped."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.version = ""

    def client(self):
        from elasticsearch import Elasticsearch
        return Elasticsearch(self.url, request_timeout=30)

    def stop(self) -> None:
        pass


def _unavailable(reason: str) -> None:
    unavailable(f"Elasticsearch unavailable: {reason}", "the Elasticsearch tests")


_failure: str | None = None


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[ElasticNode | ExternalNode]:
    """One Elasticsearch node for the whole session (about 20–40 s to start)."""
    global _failure
    if _failure:
        _unavailable(_failure)
    external = os.environ.get("UNIONCAT_TEST_ES_URL")
    if external:
        yield ExternalNode(external)
        return
    try:
        # not under pytest's tmp folder: that one is private to root, and the node runs as nobody
        node = ElasticNode(distribution(), Path(tempfile.mkdtemp(prefix="unioncat-es-"))).start()
    except (ElasticUnavailable, OSError, subprocess.SubprocessError, zipfile.BadZipFile) as exc:
        _failure = str(exc)
        _unavailable(_failure)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def elasticsearch_url(elasticsearch) -> str:
    return elasticsearch.url
