"""Metadata store (SQLAlchemy 2 + Alembic): the source of truth for tenders, bids and stages."""
