"""Roles on API keys; each tender's opening key; a bid's data key may be destroyed (sealed) and renewed (opened)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import bidproc.metadata.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(length=20), nullable=False, server_default="platform"))
    with op.batch_alter_table("tenders") as batch:
        batch.add_column(sa.Column("opening", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("opened_at", bidproc.metadata.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("bids") as batch:
        batch.alter_column("wrapped_key", existing_type=sa.LargeBinary(), nullable=True)
        batch.add_column(sa.Column("opened_at", bidproc.metadata.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bids") as batch:
        batch.drop_column("opened_at")
        batch.alter_column("wrapped_key", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("tenders") as batch:
        batch.drop_column("opened_at")
        batch.drop_column("opening")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
