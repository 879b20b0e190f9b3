"""Recipients mode: the buyer's own certificates; the backup key alone opens, offline (openssl, bidproc open)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tests.foundation.stack import Stack
from tests.opening.helpers import certificate, client, deposit, journal, tender
from tests.services import ROOT


def test_backup_certificate_alone_opens_offline(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    _main_key, main_cert = certificate("rsa", "Acheteur principal")
    backup_key, backup_cert = certificate("ec", "Acheteur secours")
    (tmp_path / "backup.key").write_bytes(backup_key)
    (tmp_path / "backup.pem").write_bytes(backup_cert)
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform, {"mode": "recipients", "certificates": [main_cert.decode(), backup_cert.decode()]})
    assert "shares" not in t["opening"] and len(t["opening"]["fingerprints"]) == 2
    files = {"offre.bin": os.urandom((1 << 20) + 4321), "annexe.txt": b"annexe technique\n"}
    bid = deposit(platform, t["id"], files)
    assert stack.wait_status(platform, bid)["status"] == "processed"
    assert buyer.get(f"/v1/bids/{bid}/sealed/offre.bin").json()["code"] == "opening.too_early"

    stack.clock.offset = timedelta(hours=1, seconds=1)
    r = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": []})
    assert r.status_code == 409 and r.json()["code"] == "opening.offline"  # bidproc holds no key to open with
    envelopes = tmp_path / "in" / bid
    envelopes.mkdir(parents=True)
    for name in files:
        got = buyer.get(f"/v1/bids/{bid}/sealed/{name}")
        assert got.status_code == 200 and got.headers["content-type"] == "application/pkcs7-mime"
        (envelopes / f"{name}.p7m").write_bytes(got.content)
        out = tmp_path / f"{name}.openssl"
        subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(envelopes / f"{name}.p7m"),
                        "-inkey", str(tmp_path / "backup.key"), "-recip", str(tmp_path / "backup.pem"),
                        "-out", str(out)], check=True, capture_output=True)
        assert out.read_bytes() == files[name]
    assert len(journal(stack, "document.sealed.read", bid)) == 2

    def offline(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bidproc.cli", "open", "--offline", "--key",
                               str(tmp_path / "backup.key"), "--cert", str(tmp_path / "backup.pem"), "--in",
                               str(source), "-o", str(target)], cwd=ROOT, capture_output=True, text=True)

    done = offline(tmp_path / "in", tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100%" in done.stderr
    for name, data in files.items():
        assert (tmp_path / "out" / bid / name).read_bytes() == data
    # one flipped byte: openssl and bidproc both refuse, and bidproc writes nothing
    envelope = bytearray((envelopes / "offre.bin.p7m").read_bytes())
    envelope[len(envelope) // 2] ^= 0x01
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "offre.bin.p7m").write_bytes(envelope)
    refused = offline(tampered, tmp_path / "out2")
    assert refused.returncode == 1 and "seal.tampered" in refused.stdout
    assert not (tmp_path / "out2" / "offre.bin").exists()
    assert subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(tampered / "offre.bin.p7m"),
                           "-inkey", str(tmp_path / "backup.key"), "-recip", str(tmp_path / "backup.pem"),
                           "-out", str(tmp_path / "x")], capture_output=True).returncode != 0
