"""``bidproc up`` as an operator runs it: commands on one ``--data-dir`` work together, and a service
SIGKILLed in the middle of a bid resumes it as soon as it is restarted, with the default settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from bidproc.config import ClamdSettings
from tests.foundation.upproc import bidproc, cli_env, client, db_row, new_bid, up, wait_status
from tests.services import ROOT, free_port


def test_every_data_command_follows_data_dir(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    env = cli_env(clamd_settings.port)
    service, other = tmp_path / "service", tmp_path / "other"
    assert bidproc(env, "migrate", "--data-dir", str(service)).returncode == 0
    assert (service / "bidproc.db").exists()
    made = bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(service))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    foreign = bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(other)).stdout.strip()
    shown = json.loads(bidproc(env, "config", "show", "--data-dir", str(service)).stdout)
    assert Path(shown["service"]["data_dir"]).resolve() == service.resolve()
    port = free_port()
    with up(env, service, port, tmp_path / "up.log"):
        with client(port, key) as http:
            assert http.get("/v1/bids/no-such-bid").json()["code"] == "bid.not_found"  # authenticated
        with client(port, foreign) as http:  # a key of another data directory is not this service's
            assert http.get("/v1/bids/no-such-bid").status_code == 403
    journal = bidproc(env, "journal", "verify", "--data-dir", str(service))
    assert journal.returncode == 0 and json.loads(journal.stdout)["entries"] > 0, journal.stdout
    revoked = bidproc(env, "apikey", "revoke", "--key", key, "--data-dir", str(service))
    assert revoked.returncode == 0 and "platform" in revoked.stdout, revoked.stdout + revoked.stderr


def test_restarted_up_resumes_an_in_flight_bid_at_once(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    # A clamd of this test's own, frozen so that the service is provably inside the bid when it is killed.
    clamd_port, rundir = free_port(), tmp_path / "clamd"
    subprocess.run([str(ROOT / "scripts/clamd.sh"), "start", str(clamd_port), str(rundir)], check=True,
                   capture_output=True)
    clamd_pid = int((rundir / "clamd.pid").read_text())
    env, data = cli_env(clamd_port), tmp_path / "data"
    key = bidproc(env, "apikey", "create", "--tenant", "platform", "--data-dir", str(data)).stdout.strip()
    port, log = free_port(), tmp_path / "up.log"
    try:
        with up(env, data, port, log) as first, client(port, key) as http:
            bid_id = new_bid(http, {"offre.txt": b"Offre technique\n", "annexe.txt": b"Annexe\n"})
            os.kill(clamd_pid, signal.SIGSTOP)
            assert http.post(f"/v1/bids/{bid_id}/submit").status_code == 201
            end = time.monotonic() + 30
            while not db_row(data, "SELECT lease_owner FROM bids WHERE id = ? AND lease_owner IS NOT NULL",
                              bid_id):
                assert time.monotonic() < end, log.read_text(errors="replace")
                time.sleep(0.1)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        os.kill(clamd_pid, signal.SIGCONT)
        (lease_until,) = db_row(data, "SELECT lease_until FROM bids WHERE id = ?", bid_id)
        assert lease_until is not None  # the dead service's lease still runs (120 s by default)

        restarted = time.monotonic()
        with up(env, data, port, log), client(port, key) as http:
            status = wait_status(http, bid_id, timeout=30)
            took = time.monotonic() - restarted
            assert status["status"] == "processed", (status, log.read_text(errors="replace"))
            assert {f["verdict"] for f in status["files"]} == {"accepted"}
        assert took < 30
        (processed,) = db_row(data, "SELECT count(*) FROM journal WHERE subject = ? AND action = 'bid.processed'",
                               bid_id)
        (attempts,) = db_row(data, "SELECT attempts FROM bids WHERE id = ?", bid_id)
        assert processed == 1 and attempts == 2  # the killed attempt and the one that finished
    finally:
        try:
            os.kill(clamd_pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        subprocess.run([str(ROOT / "scripts/clamd.sh"), "stop", str(rundir)], check=False)
