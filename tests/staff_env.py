"""A small consortium for the staff-area tests: live and dead members on loopback.

* ``good`` — a file dump of 12 records (Nanjing), OPAC template pointing at a live loopback server;
* ``seu`` — the real OAI-PMH demo provider (Nanjing), OPAC template pointing at a dead port;
* ``broken`` — a file member whose dump is missing (Suzhou): every harvest fails;
* ``dead`` — OAI-PMH at a loopback port nobody listens on (Suzhou);
* ``zlive`` — a real Zebra Z39.50 server (Wuxi); ``zdead`` — Z39.50 at a dead port (Wuxi).

``staff_env`` yields a :class:`StaffEnv` with the catalogue, an in-process job runner and a
``make_app()`` for the web app; accounts ``viewer-1`` and ``operator-1`` (password ``PASSWORD``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from marc_fixtures import iso2709, make_record, oai_records
from demo.oai_member import make_app as make_oai_app, serve
from unioncat.inprocess import InProcessRunner
from unioncat.pipeline import Catalogue
from unioncat.settings import load_settings
from publish.zebra_server import free_port
from web import create_app
from web.accounts import Accounts
from peers.zebra import bib, zebra  # noqa: F401 - zebra is a fixture

PASSWORD = "correct horse battery"


def write_dump(path: Path, n: int) -> None:
    path.write_bytes(b"".join(iso2709(make_record(f"g{i:03d}", title=f"Good book {i}")) for i in range(1, n + 1)))


@dataclass
class StaffEnv:
    root: Path
    sources_path: Path
    cat: Catalogue
    runner: InProcessRunner
    oai_url: str

    def make_app(self, **config):
        """The web app as `unioncat serve` makes it, with extra config keys (e.g. STAFF_PASSWORD)."""
        return create_app({"SOURCES": self.cat.sources, "DB_ENGINE": self.cat.engine,
                           "SEARCH_BACKEND": self.cat.index, "JOBS": self.runner, "SECRET_KEY": "test",
                           "TESTING": True, **config})

    def cli_args(self) -> list[str]:
        return ["--sources", str(self.sources_path), "--data", str(self.root / "var")]


def login(client, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the page's CSRF token for later posts."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text).group(1)
    response = client.post("/staff/login", data={"username": name, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.text
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/").text).group(1)


@pytest.fixture
def staff_env(tmp_path: Path, zebra):  # noqa: F811 - the zebra fixture
    zserver = zebra([bib(n) for n in range(1, 6)])
    oai_url, stop_oai = serve(make_oai_app(oai_records(5), repository_name="Southeast University"))
    live_http = oai_url.rsplit("/", 1)[0]
    write_dump(tmp_path / "good.mrc", 12)
    dead = free_port()
    config = {
        "consortium": {"name": "Test Consortium"},
        "regions": ["Nanjing", "Suzhou", "Wuxi"],
        "sources": [
            {"id": "good", "name": "Good University Library", "region": "Nanjing", "protocol": "file",
             "path": "good.mrc", "schedule": "daily", "opac_url": live_http + "/opac?id={local_id}"},
            {"id": "seu", "name": "Southeast University Library", "region": "Nanjing", "protocol": "oai",
             "url": oai_url, "timeout": 3, "max_retries": 0,
             "opac_url": f"http://127.0.0.1:{dead}/opac/{{local_id}}"},
            {"id": "broken", "name": "Broken College Library", "region": "Suzhou", "protocol": "file",
             "path": "missing/broken.mrc", "schedule": "daily"},
            {"id": "dead", "name": "Dead Institute Library", "region": "Suzhou", "protocol": "oai",
             "url": f"http://127.0.0.1:{dead}/oai", "timeout": 2, "max_retries": 0},
            {"id": "zlive", "name": "Zebra Polytechnic Library", "region": "Wuxi", "protocol": "z3950",
             "url": zserver.url, "timeout": 5},
            {"id": "zdead", "name": "Silent Normal University Library", "region": "Wuxi", "protocol": "z3950",
             "url": f"z3950://127.0.0.1:{dead}/Default", "timeout": 2, "max_retries": 0},
        ],
    }
    sources_path = tmp_path / "sources.yaml"
    sources_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    settings = load_settings(env={}, sources_path=str(sources_path), data_dir=str(tmp_path / "var"))
    cat = Catalogue(settings)
    accounts = Accounts(cat.engine)
    accounts.add("viewer-1", PASSWORD, "viewer")
    accounts.add("operator-1", PASSWORD, "operator")
    runner = InProcessRunner(cat)
    try:
        yield StaffEnv(tmp_path, sources_path, cat, runner, oai_url)
    finally:
        runner.close()
        cat.close()
        stop_oai()
