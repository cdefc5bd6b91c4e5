"""dedupe_walk: a full dedupe pass's block walk, numbered, read a page at a time

The walk over every block was one streamed query open for the whole scoring: SQLite could not checkpoint
while it was open, and at 5M member records the WAL grew past the database (27.8 GB).  The walk is now
planned into this table once and read by position, which is also where an interrupted pass goes on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 15:40:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dedupe_walk',
                    sa.Column('pos', sa.Integer(), autoincrement=False, nullable=False),
                    sa.Column('key', sa.String(), nullable=False),
                    sa.PrimaryKeyConstraint('pos'))


def downgrade() -> None:
    op.drop_table('dedupe_walk')
