"""dedupe_keys: a unique index on (key, source, local_id) instead of the primary key

A full dedupe pass stages every record's blocking keys.  Into the primary key's B-tree each key was a random
insert (2.4M keys of 300k records: 31.2 CPU-s and 140 s of wall time, against 10.9 CPU-s and 40 s into a plain
table with the index built after), and the 5M run's staging spent 38% of its time in SQLite.  A unique index
can be dropped while a full pass stages and built once after it; a primary key cannot.  The rows are copied
into the new table as they are.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 15:50:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild(primary_key=False)
    op.create_index('ix_dedupe_keys_key', 'dedupe_keys', ['key', 'source', 'local_id'], unique=True)
    op.create_index('ix_dedupe_keys_record', 'dedupe_keys', ['source', 'local_id'], unique=False)


def downgrade() -> None:
    _rebuild(primary_key=True)
    op.create_index('ix_dedupe_keys_record', 'dedupe_keys', ['source', 'local_id'], unique=False)


def _rebuild(primary_key: bool) -> None:
    """``dedupe_keys`` made again with or without its primary key, its rows copied (its indexes go with it)."""
    op.create_table('dedupe_keys_new',
                    sa.Column('key', sa.String(), nullable=False),
                    sa.Column('source', sa.String(length=64), nullable=False),
                    sa.Column('local_id', sa.String(length=255), nullable=False),
                    *([sa.PrimaryKeyConstraint('key', 'source', 'local_id', name='pk_dedupe_keys')]
                      if primary_key else []))
    op.execute("INSERT INTO dedupe_keys_new (key, source, local_id) SELECT key, source, local_id FROM dedupe_keys")
    op.drop_table('dedupe_keys')
    op.rename_table('dedupe_keys_new', 'dedupe_keys')
