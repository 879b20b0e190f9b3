"""Engine, sessions and migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bidproc.errors import BidprocError, Code

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x62696470726F63  # "bidproc": the advisory lock that serialises migrations
READ_ONLY = "bidproc_read_only"  # an execution option of the engine behind Database.reading
SQLITE_BUSY_SECONDS = 30  # how long a transaction waits for SQLite's single writer before it is an outage


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except Exception as exc:
            raise BidprocError(Code.CONFIG_INVALID, f"database url not usable: {exc}") from exc
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # SQLite's deferred transactions can deadlock two writers that both read first (the journal
            # head); BEGIN IMMEDIATE takes the write lock up front (SQLAlchemy's documented recipe).
            # Transactions that only read (Database.reading) begin deferred: WAL lets them run beside the writer.
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql(
                "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        # SQLite has one writer and every transaction here begins IMMEDIATE. Its busy handler retries by
        # sleeping (up to 100 ms a time), so a receipt waited on the pipeline's sleeps more than on its
        # work: the threads of this process queue on a lock instead, handed over as soon as a transaction
        # ends. Other processes on the same file still meet SQLite's lock and busy_timeout.
        self._writer = threading.RLock() if url.startswith("sqlite") else None
        self.busy_seconds: float = SQLITE_BUSY_SECONDS

    def migrate(self) -> None:
        """Bring the schema to the latest revision (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Processes started together (API and workers) migrate at once: without a lock two of them
                # both see no alembic_version table and both create it. Held until this transaction ends.
                # (SQLite is serialised already: every transaction begins IMMEDIATE.)
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error.

        The database unreachable (stopped, restarting, a dropped connection; SQLite locked past its busy
        timeout) is ``database.unavailable``: an outage, answered 503 and waited out, not an internal error.
        """
        if self._writer is not None and not self._writer.acquire(timeout=self.busy_seconds):
            raise BidprocError(Code.DATABASE_UNAVAILABLE, "the database is unavailable: busy for too long")
        try:
            with _outage(), self._sessions() as session, session.begin():
                yield session
        finally:
            if self._writer is not None:
                self._writer.release()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it does not queue for the single writer (checks a
        request makes before its work, e.g. an upload's or a submit's first look at the bid). Nothing may
        be written in it; what must hold when writing is checked again in the writing transaction."""
        with _outage(), self._readers() as session:
            yield session  # closing the session ends its transaction: nothing to commit

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _outage() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if not _unreachable(exc):
            raise
        raise BidprocError(Code.DATABASE_UNAVAILABLE, f"the database is unavailable: {exc.orig}") from exc


def _unreachable(exc: OperationalError) -> bool:
    """An outage (no connection, a dropped one, a server shutting down, SQLite locked), not a bad statement."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if type(orig).__module__.startswith("psycopg"):
        state = getattr(orig, "sqlstate", None)  # none when the connection itself failed
        return state is None or str(state).startswith(("08", "57P"))  # connection exception, shutdown
    return "database is locked" in str(orig)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    cursor.close()
