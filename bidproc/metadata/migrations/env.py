"""Alembic environment: the connection is handed in by :meth:`bidproc.metadata.db.Database.migrate`."""

from alembic import context

from bidproc.metadata.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: fall back to the URL in the config
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "").connect()
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
