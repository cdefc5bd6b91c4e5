"""The database schema under Alembic: create, upgrade, check and regenerate migrations.

The tables are declared in code on ``storage.db.metadata`` by the package
that owns them; the migrations in ``unioncat/migrations/versions`` are what
actually builds a database, on SQLite and PostgreSQL alike.  Every process
that opens the stores (CLI, web app, rq worker) calls :func:`ensure_schema`,
which upgrades an older database to the newest revision — so ``unioncat db
upgrade`` is only needed to upgrade ahead of a deployment, not to start.
A test asserts the migrations produce exactly ``metadata``; a new table is
one command away (``unioncat db revision -m "what changed"``, see README).
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from storage.db import metadata, write_lock

from .settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Modules that declare tables on the shared metadata; a new table module is added here.
SCHEMA_MODULES = ("storage.db", "harvester.stores.records", "harvester.stores.deferred", "harvester.stores.runs",
                  "harvester.stores.checkpoints", "harvester.stores.quarantine", "harvester.stores.locks",
                  "harvester.ops", "normaliser.store", "normaliser.links", "normaliser.authorities",
                  "dedupe.store", "dedupe.members", "dedupe.evidence", "dedupe.blockstore", "dedupe.classpairs",
                  "web.accounts", "web.sessions", "web.usage_store", "web.ledger_store")

#: The first revision: a database made by ``metadata.create_all`` before migrations existed is stamped with it.
BASELINE = "0001"

_ADVISORY_KEY = 0x756E696F6E636174  # "unioncat": serialises concurrent upgrades on PostgreSQL


def target_metadata() -> MetaData:
    """``metadata`` with every table module imported."""
    for name in SCHEMA_MODULES:
        importlib.import_module(name)
    return metadata


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the newest revision (fast when it is there already).

    A database without Alembic's version table but with our tables was built
    by ``create_all`` before migrations existed: it is stamped as the
    baseline, then upgraded.  On PostgreSQL an advisory lock makes workers
    that start together upgrade one after the other.
    """
    with engine.connect() as conn:
        found = current(conn)
    if found == head():
        return
    if found is not None and found not in known_revisions():
        raise SchemaError(f"the database is at schema revision {found}, which this release of unioncat does not "
                          f"know (its newest is {head()}): a newer release upgraded it; run that release")
    with write_lock(engine):
        upgrade(engine)


class SchemaError(RuntimeError):
    """The database cannot be used by this release."""


def database_problem(settings: Settings, exc: Exception) -> str:
    """One line for the CLI: which database (password hidden) and why it cannot be used."""
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return f"database {url}: {reason}"


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (revision before, revision after)."""
    target_metadata()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        before = current(conn)
        if before is None and inspect(conn).has_table("raw_records"):
            # made by create_all before migrations existed: if it already has every table of this
            # release it is at head; otherwise it is the first release's schema, upgraded from there
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            command.stamp(_config(conn), "head" if not compare_metadata(context, target_metadata()) else BASELINE)
        command.upgrade(_config(conn), revision)
        return before, current(conn)


def differences(engine: Engine) -> list:
    """What ``metadata`` has that the database lacks (or vice versa); empty when they agree."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, target_metadata())


def revision(engine: Engine, message: str) -> str:
    """Autogenerate a migration from the difference between an up-to-date ``engine`` and ``metadata``.

    Use an empty SQLite database (``unioncat db revision`` does) so the
    migration is written against the previous head, then read it through.
    """
    upgrade(engine)
    with engine.begin() as conn:
        script = command.revision(_config(conn), message=message, autogenerate=True,
                                  rev_id=f"{len(list(ScriptDirectory.from_config(_config()).walk_revisions())) + 1:04d}")
    head.cache_clear()
    known_revisions.cache_clear()
    return script.path if script is not None else ""
