"""dedupe_features.block_keys: each record's blocking keys beside its features (a batch of blocks is one query)

The scorer reads a batch of blocks as one join of ``dedupe_keys`` and ``dedupe_features``; the
``block_keys`` column gives every key of each member in that row, instead of one more row a key.  Existing
databases get it from their ``dedupe_keys`` rows, a few thousand records at a time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:40:00
"""
from __future__ import annotations

import json
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dedupe_features', schema=None) as batch_op:
        batch_op.add_column(sa.Column('block_keys', sa.Text(), nullable=False, server_default='[]'))
    _backfill()


def _backfill() -> None:
    """Each record's ``dedupe_keys`` rows as one JSON list, in key order, 2,000 records at a time."""
    features = sa.table('dedupe_features', sa.column('source', sa.String), sa.column('local_id', sa.String),
                        sa.column('block_keys', sa.Text))
    keys = sa.table('dedupe_keys', sa.column('key', sa.String), sa.column('source', sa.String),
                    sa.column('local_id', sa.String))
    conn = op.get_bind()
    last = ("", "")
    while True:
        records = conn.execute(sa.select(features.c.source, features.c.local_id)
                               .where(sa.tuple_(features.c.source, features.c.local_id) > sa.tuple_(*last))
                               .order_by(features.c.source, features.c.local_id).limit(2000)).all()
        if not records:
            return
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for source in {s for s, _ in records}:
            ids = [l for s, l in records if s == source]
            for i in range(0, len(ids), 400):
                rows = conn.execute(sa.select(keys.c.local_id, keys.c.key).where(
                    keys.c.source == source, keys.c.local_id.in_(ids[i:i + 400])).order_by(keys.c.key))
                for local_id, key in rows:
                    found[(source, local_id)].append(key)
        values = [dict(s=s, l=l, block_keys=json.dumps(found[(s, l)], ensure_ascii=False)) for s, l in records
                  if (s, l) in found]
        if values:
            conn.execute(sa.update(features).where(features.c.source == sa.bindparam('s'),
                                                   features.c.local_id == sa.bindparam('l')), values)
        last = tuple(records[-1])


def downgrade() -> None:
    with op.batch_alter_table('dedupe_features', schema=None) as batch_op:
        batch_op.drop_column('block_keys')
