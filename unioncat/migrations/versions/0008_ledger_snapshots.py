"""ledger snapshots; an index for the overview's live-record counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:29:03.981604
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_monthly',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('member', sa.String(length=64), nullable=False),
    sa.Column('contributed', sa.Integer(), nullable=False),
    sa.Column('original', sa.Integer(), nullable=False),
    sa.Column('fresh_days', sa.Integer(), nullable=True),
    sa.Column('downloaded_by_others', sa.Integer(), nullable=False),
    sa.Column('ill_could_fill', sa.Integer(), nullable=False),
    sa.Column('downloads_used', sa.Integer(), nullable=False),
    sa.Column('ill_sent', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('month', 'member', name='uq_ledger_month_member')
    )
    # the overview's live-record counts per member read this index only (bench/staff.py)
    op.create_index('ix_raw_source_deleted', 'raw_records', ['source', 'deleted'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_raw_source_deleted', table_name='raw_records')
    op.drop_table('ledger_monthly')
