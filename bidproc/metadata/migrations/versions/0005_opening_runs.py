"""The opening runs as a queued job (one row per opening, polled); a bid's backup copy and its key

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import bidproc.metadata.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = bidproc.metadata.models.UTCDateTime(timezone=True)
    op.create_table(
        "opening_runs",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("tender_id", sa.String(length=36), sa.ForeignKey("tenders.id"), nullable=False, index=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("requested_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("key_expires_at", when, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("started_at", when, nullable=True),
        sa.Column("finished_at", when, nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
    )
    op.create_table(
        "backup_files",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("bid_id", sa.String(length=36), sa.ForeignKey("bids.id"), nullable=False, index=True),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("uploaded_at", when, nullable=False),
        sa.UniqueConstraint("bid_id", "name"),
    )
    with op.batch_alter_table("bids") as batch:
        batch.add_column(sa.Column("backup_key", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bids") as batch:
        batch.drop_column("backup_key")
    op.drop_table("backup_files")
    op.drop_table("opening_runs")
