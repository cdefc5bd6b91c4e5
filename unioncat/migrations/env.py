"""Alembic environment: the schema is ``storage.db.metadata`` with every package's tables registered.

Run through ``unioncat db upgrade`` / ``unioncat db revision`` (see ``unioncat.schema``), which pass an open
connection in ``config.attributes["connection"]``; SQLite gets batch mode so ALTERs work there too.
"""
from __future__ import annotations

from alembic import context

from unioncat.schema import target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
