"""``bidproc up``: API and in-process workers on embedded defaults, as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bidproc.config import ClamdSettings
from tests.services import ROOT, free_port


def test_up_serves_and_processes_on_embedded_defaults(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    port = free_port()
    env = {**os.environ, "BIDPROC_CLAMD_PORT": str(clamd_settings.port), "BIDPROC_SERVICE_DATA_DIR": str(tmp_path)}
    key = subprocess.run([sys.executable, "-m", "bidproc.cli", "apikey", "create", "--tenant", "p"], env=env,
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "bidproc.cli", "up", "--port", str(port), "--data-dir",
                             str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"})
        for _ in range(300):
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        tender = http.post("/v1/tenders", json={"reference": "UP-1", "title": "t", "buyer": "b",
                                                "deadline": "2099-01-01T00:00:00+00:00"}).json()
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        for _ in range(300):
            status = http.get(f"/v1/bids/{bid['id']}").json()
            if status["status"] == "processed":
                break
            time.sleep(0.1)
        assert status["status"] == "processed" and status["files"][0]["verdict"] == "accepted"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")
