"""Alembic migrations build exactly the tables the code declares, on SQLite and on PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage.db import make_engine, metadata, sqlite_url
from unioncat import schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else sqlite_url(tmp_path / "m.db")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_migrations_produce_exactly_the_declared_schema(empty_engine):
    before, after = schema.upgrade(empty_engine)
    assert (before, after) == (None, schema.head())
    diffs = schema.differences(empty_engine)
    assert diffs == [], "the migrations differ from the tables in code; run `unioncat db revision -m ...`"
    assert set(metadata.tables) <= set(inspect(empty_engine).get_table_names())


def test_ensure_schema_is_idempotent_and_adopts_a_create_all_database(empty_engine):
    metadata.create_all(empty_engine)  # a database made before migrations existed
    schema.ensure_schema(empty_engine)
    with empty_engine.connect() as conn:
        assert schema.current(conn) == schema.head()
    schema.ensure_schema(empty_engine)
    assert schema.differences(empty_engine) == []


def test_db_commands(tmp_path):
    from click.testing import CliRunner

    from unioncat.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--data", str(tmp_path), "db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0 and f"revision {schema.head()}" in result.stderr
    result = runner.invoke(main, ["--data", str(tmp_path), "db", "current"], catch_exceptions=False)
    assert result.stdout.strip() == f"current {schema.head()}, head {schema.head()}"


def test_a_database_from_a_newer_release_is_refused_clearly(tmp_path):
    from sqlalchemy import text

    engine = make_engine(sqlite_url(tmp_path / "m.db"))
    schema.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(schema.SchemaError, match="revision 9999, which this release"):
        schema.ensure_schema(engine)
    engine.dispose()


def test_an_unreachable_database_is_a_clear_cli_error_without_the_password(tmp_path):
    from click.testing import CliRunner

    from unioncat.cli import main

    result = CliRunner().invoke(main, ["--data", str(tmp_path), "status"],
                                env={"UNIONCAT_DB": "postgresql://u:s3cret@127.0.0.1:9/x"})
    assert result.exit_code == 2
    assert "database postgresql://u:***@127.0.0.1:9/x: connection failed" in result.stderr
    assert "s3cret" not in result.output


def test_a_first_release_database_without_migrations_is_upgraded(empty_engine):
    """The first release made its tables with create_all: no version table, no work keys, no staff tables."""
    from sqlalchemy import text

    first_release = [t for name, t in metadata.tables.items()
                     if name in ("raw_records", "harvest_runs", "checkpoints", "quarantine", "counters", "records",
                                 "quality_reports", "clusters", "cluster_redirects", "dedupe_members",
                                 "dedupe_pending")]
    metadata.create_all(empty_engine, tables=first_release)
    with empty_engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_clusters_work_key"))
        conn.execute(text("DROP INDEX ix_runs_source_status_id"))     # added with the staff overview
        conn.execute(text("DROP INDEX ix_raw_source_deleted"))        # added with the ledger (0007)
        conn.execute(text("ALTER TABLE clusters DROP COLUMN work_key"))
        for column in ("kind", "holdings_of", "holdings"):     # added so dedupe need not decode MFHD records
            conn.execute(text(f"ALTER TABLE records DROP COLUMN {column}"))
        conn.execute(text("ALTER TABLE dedupe_pending DROP COLUMN created_seq"))   # added with 0012
    schema.ensure_schema(empty_engine)
    assert schema.differences(empty_engine) == []
    assert {"staff_users", "dedupe_pairs", "held_deletions"} <= set(inspect(empty_engine).get_table_names())


def test_block_keys_are_filled_from_the_stored_keys(empty_engine):
    """0011 gives each stored record its dedupe_keys rows as one list: an old store's next pass scores its blocks."""
    import json

    from sqlalchemy import text

    schema.upgrade(empty_engine, "0010")
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO dedupe_features (source, local_id, data) VALUES "
                          "('a', '1', '{}'), ('a', '2', '{}'), ('b', '1', '{}')"))
        conn.execute(text("INSERT INTO dedupe_keys (key, source, local_id) VALUES ('title:x', 'a', '1'), "
                          "('isbn:9', 'a', '1'), ('title:x', 'b', '1')"))
    schema.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        stored = {(s, l): json.loads(k) for s, l, k in
                  conn.execute(text("SELECT source, local_id, block_keys FROM dedupe_features"))}
    assert stored == {("a", "1"): ["isbn:9", "title:x"], ("a", "2"): [], ("b", "1"): ["title:x"]}
