"""Generic fixtures: a fresh SQLite database with every table, and its raw store."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

import dedupe.members  # noqa: F401 - registers the member tables on the shared MetaData
import dedupe.store  # noqa: F401 - registers the cluster tables on the shared MetaData
import normaliser.store  # noqa: F401 - registers the record tables on the shared MetaData
from storage.db import make_engine, metadata, sqlite_url
from harvester.store import RawStore

from peers.elastic import elasticsearch, elasticsearch_url  # noqa: F401 - shared fixtures
from search_backends import backend_factory, fresh_backend  # noqa: F401 - shared fixtures
from browser import browser, live_server, page, pytest_runtest_makereport  # noqa: F401 - shared fixtures
from peers.postgres import pg_url, postgres_server  # noqa: F401 - shared fixtures
from peers.redis_server import redis_server, redis_url  # noqa: F401 - shared fixtures


pytest_plugins = ["ci_rule"]   # in CI a skip is a failure (services.py's rule, for every kind of skip)


def pytest_generate_tests(metafunc):
    """A module that sets ``DATABASES = ("sqlite", "postgresql")`` runs its ``db``/``store`` tests on both."""
    if "db_kind" in metafunc.fixturenames and hasattr(metafunc.module, "DATABASES"):
        metafunc.parametrize("db_kind", metafunc.module.DATABASES, indirect=True)


@pytest.fixture
def db_kind(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db(tmp_path: Path, db_kind: str, request) -> Engine:
    """A temporary SQLite database (a file, so subprocesses can share it) with all tables — or PostgreSQL."""
    url = request.getfixturevalue("pg_url") if db_kind == "postgresql" else sqlite_url(tmp_path / "unioncat.db")
    engine = make_engine(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(db: Engine) -> RawStore:
    return RawStore(db)
