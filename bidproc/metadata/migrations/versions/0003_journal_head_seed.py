"""Seed the journal head row, so that the first appends of concurrent writers lock one existing row

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    head = sa.table("journal_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger),
                    sa.column("hash", sa.String))
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(head)).scalar() == 0:
        op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    pass
