"""dedupe_class_pairs: kept verdicts once for each pair of feature classes; dedupe_features.class_id

The copies of one book at many members have equal features but for the source, and every pair of them
with the copies of another book gets one verdict: stored once for the two feature classes, not once for
each pair of records (at 200k member records 2,203,312 rows of pairs of records were 232,850 of classes).
Existing rows of ``dedupe_pairs`` stay: they are still read as pairs of records, and the next full pass
stores them by class.  Each stored features row gets its class (a hash of its text), a few thousand rows
at a time.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 07:20:00
"""
from __future__ import annotations

from hashlib import blake2b

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dedupe_class_pairs',
                    sa.Column('a_class', sa.BigInteger(), autoincrement=False, nullable=False),
                    sa.Column('b_class', sa.BigInteger(), autoincrement=False, nullable=False),
                    sa.Column('decision', sa.String(length=16), nullable=False),
                    sa.Column('rule', sa.String(length=40), nullable=False),
                    sa.Column('score', sa.Float(), nullable=False),
                    sa.Column('evidence', sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint('a_class', 'b_class'))
    op.create_index('ix_dedupe_class_pairs_b', 'dedupe_class_pairs', ['b_class'], unique=False)
    with op.batch_alter_table('dedupe_features', schema=None) as batch_op:
        batch_op.add_column(sa.Column('class_id', sa.BigInteger(), nullable=False, server_default='0'))
    _backfill()
    op.create_index('ix_dedupe_features_class', 'dedupe_features', ['class_id', 'source', 'local_id'], unique=False)


def _backfill() -> None:
    """Each features row's class: the signed 64-bit BLAKE2b of its text (``dedupe.blockstore.feature_class``,
    written out here: a migration keeps what it did when it was written), 2,000 rows at a time."""
    features = sa.table('dedupe_features', sa.column('source', sa.String), sa.column('local_id', sa.String),
                        sa.column('data', sa.Text), sa.column('class_id', sa.BigInteger))
    conn = op.get_bind()
    last = ("", "")
    while True:
        rows = conn.execute(sa.select(features.c.source, features.c.local_id, features.c.data)
                            .where(sa.tuple_(features.c.source, features.c.local_id) > sa.tuple_(*last))
                            .order_by(features.c.source, features.c.local_id).limit(2000)).all()
        if not rows:
            return
        conn.execute(sa.update(features).where(features.c.source == sa.bindparam('s'),
                                               features.c.local_id == sa.bindparam('l')),
                     [dict(s=s, l=l, class_id=int.from_bytes(blake2b(data.encode('utf-8'), digest_size=8).digest(),
                                                              'big', signed=True)) for s, l, data in rows])
        last = tuple(rows[-1][:2])


def downgrade() -> None:
    op.drop_index('ix_dedupe_features_class', table_name='dedupe_features')
    with op.batch_alter_table('dedupe_features', schema=None) as batch_op:
        batch_op.drop_column('class_id')
    op.drop_index('ix_dedupe_class_pairs_b', table_name='dedupe_class_pairs')
    op.drop_table('dedupe_class_pairs')
