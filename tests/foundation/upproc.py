"""``bidproc`` commands and ``bidproc up`` run as real processes, as an operator runs them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.processes import spawn, stop, wait_healthy
from tests.services import ROOT

TERMINAL = {"processed", "quarantined", "failed", "late"}


def cli_env(clamd_port: int) -> dict[str, str]:
    # Nothing but the command line says where the data is; every queue/lease setting is the default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDPROC_")}
    return {**env, "BIDPROC_CLAMD_PORT": str(clamd_port), "PYTHONPATH": str(ROOT)}


def bidproc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bidproc.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@contextmanager
def up(env: dict[str, str], data_dir: Path, port: int, log: Path,
       address_space: int | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(["up", "--port", str(port), "--data-dir", str(data_dir)], env, log, address_space)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", log)
        yield proc
    finally:
        stop(proc, signal.SIGINT, grace=60)  # as Ctrl-C would


def client(port: int, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60)


def new_bid(http: httpx.Client, files: dict[str, bytes]) -> str:
    tender = http.post("/v1/tenders", json={"reference": f"R-{time.monotonic_ns()}", "title": "t", "buyer": "b",
                                            "deadline": "2099-01-01T00:00:00+00:00"})
    assert tender.status_code == 201, tender.text
    bid = http.post(f"/v1/tenders/{tender.json()['id']}/bids", json={"bidder": "ACME"}).json()
    for name, data in files.items():
        assert http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data).status_code == 201
    return str(bid["id"])


def wait_status(http: httpx.Client, bid_id: str, timeout: float, statuses: set[str] = TERMINAL) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/v1/bids/{bid_id}").json()
        if body["status"] in statuses or time.monotonic() > end:
            return body
        time.sleep(0.2)


def db_row(data_dir: Path, sql: str, *params: str) -> tuple[Any, ...]:
    with sqlite3.connect(f"file:{data_dir / 'bidproc.db'}?mode=ro", uri=True, timeout=30) as db:
        row = db.execute(sql, params).fetchone()
    return tuple(row) if row else ()

