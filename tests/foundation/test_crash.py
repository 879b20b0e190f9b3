"""SIGKILL a worker while it holds a bid: after restart the bid completes, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bidproc.config import ClamdSettings
from bidproc.metadata.models import BidRow, JournalRow, StageRunRow
from tests.foundation.stack import Stack
from tests.services import ROOT, free_port


def test_worker_killed_mid_bid_then_bid_completes_exactly_once(tmp_path: Path, s3_endpoint: str, redis_url: str,
                                                                postgres_url: str,
                                                                clamd_settings: ClamdSettings) -> None:
    # A clamd of this test's own, which we freeze so that the worker is provably inside the bid.
    port, rundir = free_port(), tmp_path / "clamd"
    subprocess.run([str(ROOT / "scripts/clamd.sh"), "start", str(port), str(rundir)], check=True, capture_output=True)
    clamd_pid = int((rundir / "clamd.pid").read_text())
    stack = Stack(tmp_path / "stack", s3_endpoint, ClamdSettings(port=port), lease_seconds=3)
    try:
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        for name in ("a.txt", "b.txt"):
            assert http.put(f"/v1/bids/{bid['id']}/files/{name}", content=name.encode() * 1000).status_code == 201
        first = stack.start_worker()
        stack.wait_worker_ready(first)
        os.kill(clamd_pid, signal.SIGSTOP)
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        stack.wait_status(http, bid["id"], {"processing"}, timeout=30)
        with stack.rt.db.session() as s:
            held = s.get(BidRow, bid["id"])
            assert held is not None and held.lease_owner is not None  # the first worker holds it
        time.sleep(1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        os.kill(clamd_pid, signal.SIGCONT)

        stack.start_worker()
        status = stack.wait_status(http, bid["id"], timeout=90)
        assert status["status"] == "processed"
        assert {f["verdict"] for f in status["files"]} == {"accepted"}
        time.sleep(3)  # let any redelivered message of the dead worker arrive and find nothing to do
        with stack.rt.db.session() as s:
            processed = s.execute(select(func.count()).select_from(JournalRow).where(
                JournalRow.subject == bid["id"], JournalRow.action == "bid.processed")).scalar()
            stage_done = s.execute(select(JournalRow.action).where(
                JournalRow.subject == bid["id"], JournalRow.action.like("stage.%"))).scalars().all()
            runs = s.execute(select(func.count()).select_from(StageRunRow).where(
                StageRunRow.bid_id == bid["id"])).scalar()
            row = s.get(BidRow, bid["id"])
            assert row is not None
        assert processed == 1
        assert sorted(stage_done) == ["stage.archive.done", "stage.encryption.done", "stage.intake.done",
                                      "stage.signature.done"]
        assert runs == 4
        assert row.attempts >= 2  # the dead worker's attempt and the one that finished
    finally:
        try:
            os.kill(clamd_pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stack.close()
        subprocess.run([str(ROOT / "scripts/clamd.sh"), "stop", str(rundir)], check=False)


def test_clamd_down_bids_wait_then_pass(tmp_path: Path, s3_endpoint: str, redis_url: str, postgres_url: str,
                                        clamd_settings: ClamdSettings) -> None:
    port, rundir = free_port(), tmp_path / "clamd"
    script = str(ROOT / "scripts/clamd.sh")
    subprocess.run([script, "start", str(port), str(rundir)], check=True, capture_output=True)
    stack = Stack(tmp_path / "stack", s3_endpoint, ClamdSettings(port=port))
    try:
        stack.wait_worker_ready(stack.start_worker())
        subprocess.run([script, "stop", str(rundir)], check=True)
        time.sleep(0.5)
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201  # the receipt does not wait
        end = time.monotonic() + 30
        while time.monotonic() < end:
            status = http.get(f"/v1/bids/{bid['id']}").json()
            if status["outcome"].get("waiting") == "scan.unavailable":
                break
            time.sleep(0.2)
        assert status["outcome"].get("waiting") == "scan.unavailable", status
        assert status["files"][0]["verdict"] == "pending"  # never "accepted unscanned"
        subprocess.run([script, "start", str(port), str(rundir)], check=True, capture_output=True)
        status = stack.wait_status(http, bid["id"], timeout=90)
        assert status["status"] == "processed" and status["files"][0]["verdict"] == "accepted"
        assert "waiting" not in status["outcome"]
    finally:
        stack.close()
        subprocess.run([script, "stop", str(rundir)], check=False)


def test_an_outage_longer_than_every_attempt_never_fails_the_bid(tmp_path: Path, s3_endpoint: str, redis_url: str,
                                                                 postgres_url: str) -> None:
    """Infrastructure failure is never a verdict against a bidder: waiting on clamd gives the delivery
    back, so a bid outlives more outage retries than it has attempts, then passes when clamd returns."""
    port, rundir = free_port(), tmp_path / "clamd"
    script = str(ROOT / "scripts/clamd.sh")
    stack = Stack(tmp_path / "stack", s3_endpoint, ClamdSettings(port=port), env={
        "BIDPROC_QUEUE_MAX_ATTEMPTS": "2",
        "BIDPROC_QUEUE_WAIT_FIRST_DELAY_SECONDS": "0.2",
        "BIDPROC_QUEUE_WAIT_MAX_DELAY_SECONDS": "0.4",
    })
    try:
        stack.wait_worker_ready(stack.start_worker())
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        end = time.monotonic() + 60
        status: dict[str, Any] = {}
        while time.monotonic() < end:
            status = http.get(f"/v1/bids/{bid['id']}").json()
            if status["outcome"].get("waits", 0) >= 6:
                break
            time.sleep(0.2)
        assert status["outcome"].get("waits", 0) >= 6, status  # three times its attempts, and waiting still
        assert status["status"] == "processing" and status["outcome"]["waiting"] == "scan.unavailable"
        subprocess.run([script, "start", str(port), str(rundir)], check=True, capture_output=True)
        status = stack.wait_status(http, bid["id"], timeout=90)
        assert status["status"] == "processed" and status["files"][0]["verdict"] == "accepted", status
    finally:
        stack.close()
        subprocess.run([script, "stop", str(rundir)], check=False)
