from __future__ import annotations

import shutil

import pytest

from tests.faults.services import PG_BIN, can_mount
from tests.services import unavailable


@pytest.fixture
def own_services() -> None:
    """Fault runs start (and kill) services of their own: redis-server, moto_server, clamd, initdb."""
    for exe in ("redis-server", "clamd", "runuser"):
        if not shutil.which(exe) and not shutil.which(exe, path="/usr/sbin"):
            unavailable(f"{exe} (fault injection starts its own)")
    if not (PG_BIN / "initdb").exists():
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) for a cluster of the test's own")


@pytest.fixture
def root_mount() -> None:
    if not can_mount():
        unavailable("root, to mount a small tmpfs as a full disk")
