"""A tender's contract dates (signature, end of performance), which give its packages' retention

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenders") as batch:
        batch.add_column(sa.Column("contract", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenders") as batch:
        batch.drop_column("contract")
