"""dedupe_keys: every member record's blocking keys, one indexed row a key (blocks looked up, not loaded)

Existing databases get the rows from ``dedupe_members.match_keys`` (signature entries left out), so the
next incremental build finds the blocks of a changed record as the last build left them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:50:00
"""
from __future__ import annotations

import json

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dedupe_keys',
                    sa.Column('key', sa.String(), nullable=False),
                    sa.Column('source', sa.String(length=64), nullable=False),
                    sa.Column('local_id', sa.String(length=255), nullable=False),
                    sa.PrimaryKeyConstraint('key', 'source', 'local_id'))
    with op.batch_alter_table('dedupe_keys', schema=None) as batch_op:
        batch_op.create_index('ix_dedupe_keys_record', ['source', 'local_id'], unique=False)
    _backfill()


def _backfill() -> None:
    """One row per stored blocking key, a few thousand member records at a time."""
    members = sa.table('dedupe_members', sa.column('source', sa.String), sa.column('local_id', sa.String),
                       sa.column('match_keys', sa.Text))
    keys = sa.table('dedupe_keys', sa.column('key', sa.String), sa.column('source', sa.String),
                    sa.column('local_id', sa.String))
    conn = op.get_bind()
    last = ("", "")
    while True:
        rows = conn.execute(sa.select(members.c.source, members.c.local_id, members.c.match_keys)
                            .where(sa.tuple_(members.c.source, members.c.local_id) > sa.tuple_(*last))
                            .order_by(members.c.source, members.c.local_id).limit(5000)).all()
        if not rows:
            return
        out = [dict(key=k, source=s, local_id=l) for s, l, data in rows
               for k in dict.fromkeys(json.loads(data)) if not k.startswith("sig:")]
        if out:
            conn.execute(keys.insert(), out)
        last = (rows[-1][0], rows[-1][1])


def downgrade() -> None:
    with op.batch_alter_table('dedupe_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_dedupe_keys_record')
    op.drop_table('dedupe_keys')
