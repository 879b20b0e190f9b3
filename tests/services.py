"""Real services for the test suite: clamd, PostgreSQL, Redis and an S3 endpoint (moto_server).

A missing service skips its tests on a developer's machine but *fails* them in CI (``CI=true``),
as the brief requires: a green CI never hides a service that did not run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bidproc.config import ClamdSettings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"required service unavailable in CI: {what}", pytrace=False)
    pytest.skip(f"service unavailable: {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def clamd_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClamdSettings]:
    """A clamd of our own, started by the project's script with the local EICAR database."""
    if not (shutil.which("clamd") or Path("/usr/sbin/clamd").exists()):
        unavailable("clamd (apt-get install clamav-daemon)")
    rundir = tmp_path_factory.mktemp("clamd")
    port = free_port()
    proc = subprocess.run(
        [str(ROOT / "scripts/clamd.sh"), "start", str(port), str(rundir)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        unavailable(f"clamd did not start: {proc.stderr.strip()}")
    yield ClamdSettings(host="127.0.0.1", port=port, timeout_seconds=30)
    subprocess.run([str(ROOT / "scripts/clamd.sh"), "stop", str(rundir)], check=False)


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "bidproc_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1:5432 (trust auth), dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=5
        )
    except Exception as exc:
        unavailable(f"PostgreSQL at 127.0.0.1:5432: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session (migrated by the stacks that use it)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        unavailable(f"Redis at 127.0.0.1:6379: {exc}")
    return url


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    url = "amqp://guest:guest@127.0.0.1:5672/"
    if not wait_port(5672, 2):
        unavailable("RabbitMQ at 127.0.0.1:5672")
    return url


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto_server as the S3 endpoint on a free loopback port (no MinIO server can run here)."""
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(exe).exists():
        unavailable("moto_server (pip install 'moto[server]')")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    if not wait_port(port, 30):
        proc.kill()
        unavailable("moto_server did not start")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
    log.close()
