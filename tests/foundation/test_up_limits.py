"""The whole service under an environment's memory limit (issue 8): ``bidproc up`` started as under
systemd ``LimitAS=1G`` judges valid and hostile files as without it; and an intake sandbox that cannot
start makes bids wait (``outcome.waiting = parse.unavailable``), never rejects their files."""

from __future__ import annotations

import time
from pathlib import Path

from bidproc.config import ClamdSettings
from tests.foundation.upproc import bidproc, cli_env, client, new_bid, up, wait_status
from tests.intake.builders import pdf, zip_of
from tests.intake.memory_bombs import pdf_bomb
from tests.services import free_port

GiB = 1 << 30


def test_service_under_an_inherited_limit_judges_files_as_without_it(tmp_path: Path,
                                                                     clamd_settings: ClamdSettings) -> None:
    env, data, port = cli_env(clamd_settings.port), tmp_path / "data", free_port()
    key = bidproc(env, "apikey", "create", "--tenant", "p", "--data-dir", str(data)).stdout.strip()
    files = {"offre.pdf": pdf(), "annexes.zip": zip_of([("memoire.pdf", pdf())]),
             "bomb.pdf": pdf_bomb("names", twice=True), "bomb2.pdf": pdf_bomb("annotation")}
    # below both the intake sandbox's 3 GiB and the PDF parser's 2 GiB
    with up(env, data, port, tmp_path / "up.log", address_space=GiB), client(port, key) as http:
        bid_id = new_bid(http, files)
        assert http.post(f"/v1/bids/{bid_id}/submit").status_code == 201
        status = wait_status(http, bid_id, timeout=120)
    assert status["status"] == "processed", status
    assert sorted((f["name"], f["verdict"], f["code"]) for f in status["files"]) == [
        ("annexes.zip", "accepted", None), ("bomb.pdf", "rejected", "parse.crashed"),
        ("bomb2.pdf", "rejected", "parse.crashed"), ("offre.pdf", "accepted", None)]


def test_sandbox_that_cannot_start_makes_the_bid_wait_then_resume(tmp_path: Path,
                                                                  clamd_settings: ClamdSettings) -> None:
    env, data, port = cli_env(clamd_settings.port), tmp_path / "data", free_port()
    key = bidproc(env, "apikey", "create", "--tenant", "p", "--data-dir", str(data)).stdout.strip()
    starved = {**env, "BIDPROC_INTAKE_SANDBOX_MEMORY_BYTES": str(64 << 20)}  # cannot hold the intake code
    with up(starved, data, port, tmp_path / "up.log"), client(port, key) as http:
        bid_id = new_bid(http, {"offre.pdf": pdf(), "lettre.txt": b"Madame, Monsieur\n"})
        assert http.post(f"/v1/bids/{bid_id}/submit").status_code == 201
        end = time.monotonic() + 60
        while time.monotonic() < end:
            status = http.get(f"/v1/bids/{bid_id}").json()
            if (status["outcome"] or {}).get("waiting"):
                break
            time.sleep(0.2)
        waiting = (status["outcome"] or {}).get("waiting")
        assert (status["status"], waiting) == ("processing", "parse.unavailable"), status
        assert {f["verdict"] for f in status["files"]} == {"pending"}  # no file judged by a broken sandbox
    with up(env, data, port, tmp_path / "up.log"), client(port, key) as http:  # the operator fixes it
        status = wait_status(http, bid_id, timeout=60)
    assert status["status"] == "processed" and {f["verdict"] for f in status["files"]} == {"accepted"}, status
    assert "waiting" not in status["outcome"]
