"""``bidproc up`` as an operator runs it: commands on one ``--data-dir`` work together, and a service
SIGKILLed in the middle of a bid resumes it as soon as it is restarted, with the default settings."""

from __future__ import annotations

import json
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

from bidproc.config import ClamdSettings
from tests.services import ROOT, free_port

TERMINAL = {"processed", "quarantined", "failed", "late"}


def _env(clamd_port: int) -> dict[str, str]:
    # Nothing but the command line says where the data is; every queue/lease setting is the default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDPROC_")}
    return {**env, "BIDPROC_CLAMD_PORT": str(clamd_port), "PYTHONPATH": str(ROOT)}


def _bidproc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bidproc.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@contextmanager
def _up(env: dict[str, str], data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bidproc.cli", "up", "--port", str(port), "--data-dir",
                                 str(data_dir)], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _client(port: int, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _new_bid(http: httpx.Client, files: dict[str, bytes]) -> str:
    tender = http.post("/v1/tenders", json={"reference": f"R-{time.monotonic_ns()}", "title": "t", "buyer": "b",
                                            "deadline": "2099-01-01T00:00:00+00:00"})
    assert tender.status_code == 201, tender.text
    bid = http.post(f"/v1/tenders/{tender.json()['id']}/bids", json={"bidder": "ACME"}).json()
    for name, data in files.items():
        assert http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data).status_code == 201
    return str(bid["id"])


def _wait_status(http: httpx.Client, bid_id: str, timeout: float, statuses: set[str] = TERMINAL) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/v1/bids/{bid_id}").json()
        if body["status"] in statuses or time.monotonic() > end:
            return body
        time.sleep(0.2)


def _db_row(data_dir: Path, sql: str, *params: str) -> tuple[Any, ...]:
    with sqlite3.connect(f"file:{data_dir / 'bidproc.db'}?mode=ro", uri=True, timeout=30) as db:
        row = db.execute(sql, params).fetchone()
    return tuple(row) if row else ()


def test_every_data_command_follows_data_dir(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    env = _env(clamd_settings.port)
    service, other = tmp_path / "service", tmp_path / "other"
    assert _bidproc(env, "migrate", "--data-dir", str(service)).returncode == 0
    assert (service / "bidproc.db").exists()
    made = _bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(service))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    foreign = _bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(other)).stdout.strip()
    shown = json.loads(_bidproc(env, "config", "show", "--data-dir", str(service)).stdout)
    assert Path(shown["service"]["data_dir"]).resolve() == service.resolve()
    port = free_port()
    with _up(env, service, port, tmp_path / "up.log"):
        with _client(port, key) as http:
            assert http.get("/v1/bids/no-such-bid").json()["code"] == "bid.not_found"  # authenticated
        with _client(port, foreign) as http:  # a key of another data directory is not this service's
            assert http.get("/v1/bids/no-such-bid").status_code == 403
    journal = _bidproc(env, "journal", "verify", "--data-dir", str(service))
    assert journal.returncode == 0 and json.loads(journal.stdout)["entries"] > 0, journal.stdout
    revoked = _bidproc(env, "apikey", "revoke", "--key", key, "--data-dir", str(service))
    assert revoked.returncode == 0 and "platform" in revoked.stdout, revoked.stdout + revoked.stderr


def test_restarted_up_resumes_an_in_flight_bid_at_once(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    # A clamd of this test's own, frozen so that the service is provably inside the bid when it is killed.
    clamd_port, rundir = free_port(), tmp_path / "clamd"
    subprocess.run([str(ROOT / "scripts/clamd.sh"), "start", str(clamd_port), str(rundir)], check=True,
                   capture_output=True)
    clamd_pid = int((rundir / "clamd.pid").read_text())
    env, data = _env(clamd_port), tmp_path / "data"
    key = _bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(data)).stdout.strip()
    port, log = free_port(), tmp_path / "up.log"
    try:
        with _up(env, data, port, log) as first, _client(port, key) as http:
            bid_id = _new_bid(http, {"offre.txt": b"Offre technique\n", "annexe.txt": b"Annexe\n"})
            os.kill(clamd_pid, signal.SIGSTOP)
            assert http.post(f"/v1/bids/{bid_id}/submit").status_code == 201
            end = time.monotonic() + 30
            while not _db_row(data, "SELECT lease_owner FROM bids WHERE id = ? AND lease_owner IS NOT NULL",
                              bid_id):
                assert time.monotonic() < end, log.read_text(errors="replace")
                time.sleep(0.1)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        os.kill(clamd_pid, signal.SIGCONT)
        (lease_until,) = _db_row(data, "SELECT lease_until FROM bids WHERE id = ?", bid_id)
        assert lease_until is not None  # the dead service's lease still runs (120 s by default)

        restarted = time.monotonic()
        with _up(env, data, port, log), _client(port, key) as http:
            status = _wait_status(http, bid_id, timeout=30)
            took = time.monotonic() - restarted
            assert status["status"] == "processed", (status, log.read_text(errors="replace"))
            assert {f["verdict"] for f in status["files"]} == {"accepted"}
        assert took < 30
        (processed,) = _db_row(data, "SELECT count(*) FROM journal WHERE subject = ? AND action = 'bid.processed'",
                               bid_id)
        (attempts,) = _db_row(data, "SELECT attempts FROM bids WHERE id = ?", bid_id)
        assert processed == 1 and attempts == 2  # the killed attempt and the one that finished
    finally:
        try:
            os.kill(clamd_pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        subprocess.run([str(ROOT / "scripts/clamd.sh"), "stop", str(rundir)], check=False)
