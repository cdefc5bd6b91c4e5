"""dedupe_pending.created_seq: a new cluster's creation order, fixed when its id is assigned

``created_seq`` ranks clusters by age for "the oldest id wins" when they merge later.  It was taken when
the merged cluster was written, so a merge cut into partitions that workers run in any order gave other
ages than the merge in one process.  The serial id assignment now numbers every new id in the pending
list and the merge writes that number.  Rows pending before this revision have none: their clusters
take the number at write time, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 04:30:00
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dedupe_pending', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_seq', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dedupe_pending', schema=None) as batch_op:
        batch_op.drop_column('created_seq')
