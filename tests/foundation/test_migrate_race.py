"""Processes started together (``bidproc up``'s API and workers, a compose stack) migrate a new database at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.services import fresh_postgres_database

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIGRATE = "import sys; from bidproc.metadata.db import Database; Database(sys.argv[1]).migrate()"


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own, never migrated (the session's shared one already is)."""
    with fresh_postgres_database("bidproc_race") as url:
        yield url


def test_processes_migrating_at_once_all_succeed(fresh_database: str) -> None:
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, fresh_database], env=env, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = create_engine(fresh_database)
    with engine.connect() as c:
        heads = c.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    assert len(heads) == 1
