"""``GET /v1/bids/{bid}/evidence.zip``: the archivist's route, on the real stack; the ZIP verifies offline."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, tender
from tests.services import ROOT


def test_an_archivist_retrieves_a_package_that_verifies_offline(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    platform = client(stack, "platform-a", "platform")
    t = tender(stack, platform)
    bid = deposit(platform, t["id"], {"offre.pdf": b"%PDF-1.4\n% offre\n", "annexe.txt": b"prix: 42\n"})
    assert stack.wait_status(platform, bid)["status"] == "processed"

    archivist = client(stack, "platform-a", "archivist")
    answer = archivist.get(f"/v1/bids/{bid}/evidence.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip", answer.text[:300]
    path = tmp_path / "evidence.zip"
    path.write_bytes(answer.content)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"manifest.json", "manifest.json.p7s", "SHA256SUMS", "SHA256SUMS.p7s", "SHA256SUMS.tsr"} <= names
    check = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(path)], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(journal(stack, "evidence.read", bid)) == 1

    # the platform's key is not an archivist's; another tenant's archivist does not see the bid
    refused = platform.get(f"/v1/bids/{bid}/evidence.zip")
    assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden_role"
    stranger = client(stack, "platform-b", "archivist").get(f"/v1/bids/{bid}/evidence.zip")
    assert stranger.status_code == 404 and stranger.json()["code"] == "bid.not_found"
    missing = archivist.get(f"/v1/bids/{bid}/evidence.zip", params={"version": 9})
    assert missing.status_code == 404 and missing.json()["code"] == "evidence.not_found", missing.text
