"""A whole bidproc on real services for one test: PostgreSQL, S3 (moto_server), Redis, clamd.

The API runs in the test process (uvicorn on a free loopback port, with a clock the test can move);
workers run as real ``bidproc worker`` processes, so they can be killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

from bidproc.api.app import create_app
from bidproc.api.server import JsonErrorsProtocol
from bidproc.config import ClamdSettings, Settings, load_settings
from bidproc.desk.tenants import create_api_key
from bidproc.pipeline.queue import Pipeline
from bidproc.runtime import Runtime
from tests.services import ROOT, free_port

TERMINAL = {"processed", "quarantined", "failed", "late"}


@dataclass
class MovableClock:
    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def fresh_database(admin_dsn: str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres") -> tuple[str, str]:
    name = f"bidproc_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    def __init__(self, tmp: Path, s3_endpoint: str, clamd: ClamdSettings, *, lease_seconds: int = 30,
                 env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.db_name, db_url = fresh_database()
        self.env = {
            "BIDPROC_SERVICE_DATA_DIR": str(tmp / "data"),
            "BIDPROC_SERVICE_SERVICE_KEY": os.urandom(32).hex(),
            "BIDPROC_DATABASE_URL": db_url,
            "BIDPROC_STORAGE_BACKEND": "s3",
            "BIDPROC_STORAGE_S3_ENDPOINT": s3_endpoint,
            "BIDPROC_STORAGE_S3_SECRET_KEY": "moto-accepts-any",
            "BIDPROC_STORAGE_S3_BUCKET": f"bidproc-{uuid.uuid4().hex[:12]}",
            "BIDPROC_QUEUE_BACKEND": "redis",
            "BIDPROC_QUEUE_NAMESPACE": f"bidproc-test-{uuid.uuid4().hex[:8]}",
            "BIDPROC_QUEUE_LEASE_SECONDS": str(lease_seconds),
            "BIDPROC_QUEUE_STUCK_AFTER_SECONDS": "1",
            "BIDPROC_QUEUE_RECONCILE_EVERY_SECONDS": "1",
            "BIDPROC_CLAMD_HOST": clamd.host,
            "BIDPROC_CLAMD_PORT": str(clamd.port),
            "BIDPROC_CLAMD_TIMEOUT_SECONDS": "120",
            "TMPDIR": str(tmp / "tmp"),
            **(env or {}),
        }
        (tmp / "tmp").mkdir(parents=True, exist_ok=True)
        self.settings: Settings = load_settings(env=self.env)
        self.clock = MovableClock()
        self.rt = Runtime(self.settings, clock=self.clock)
        self.rt.migrate()
        self.pipeline = Pipeline(self.rt)  # the API's side: it only enqueues
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.rt, self.pipeline), host="127.0.0.1",
                                                    port=self.port, log_level="warning", http=JsonErrorsProtocol))
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.workers: list[subprocess.Popen[bytes]] = []

    def client(self, tenant: str = "platform-a") -> httpx.Client:
        key = create_api_key(self.rt.db, tenant, self.rt.clock())
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {key}"},
                            timeout=60)

    def start_worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, **extra_env}
        log = (self.tmp / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "bidproc.cli", "worker"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def wait_worker_ready(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        index = self.workers.index(proc)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if " ready" in (self.tmp / f"worker-{index}.log").read_text(errors="replace"):
                return
            assert proc.poll() is None, self.worker_logs()
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout}s\n{self.worker_logs()}")

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log")))

    def wait_status(self, http: httpx.Client, bid_id: str, statuses: set[str] = TERMINAL,
                    timeout: float = 90) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            body: dict[str, Any] = http.get(f"/v1/bids/{bid_id}").json()
            if body["status"] in statuses:
                return body
            time.sleep(0.2)
        raise AssertionError(f"bid {bid_id} still {body['status']} after {timeout}s\n{self.worker_logs()}")

    def new_tender(self, http: httpx.Client, hours: float = 1) -> dict[str, Any]:
        deadline = (self.clock() + timedelta(hours=hours)).isoformat()
        r = http.post("/v1/tenders", json={"reference": f"T-{uuid.uuid4().hex[:8]}", "title": "Travaux de voirie",
                                           "buyer": "Commune de Test", "deadline": deadline})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.server.should_exit = True
        self._thread.join(10)
        self.pipeline.broker.close()
        self.rt.close()
        drop_database(self.db_name)


def stack_fixture(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings, redis_url: str,
                  postgres_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings)
    try:
        yield stack
    finally:
        stack.close()
