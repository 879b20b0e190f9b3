"""Receipts timestamped by a TSA reached over HTTP, and what happens when it is down."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlalchemy import select

from bidproc.config import replace
from bidproc.desk import Desk
from bidproc.errors import BidprocError, Code
from bidproc.metadata.models import TenantRow
from bidproc.runtime import Runtime
from bidproc.tenants import create_api_key
from bidproc.timestamps.tsa import RemoteTSA
from tests.foundation.stack import Stack
from tests.pki import TestPKI
from tests.services import free_port


def test_remote_tsa_token_verifies_with_openssl(pki: TestPKI, tmp_path: Path) -> None:
    data = b'{"receipt": "bytes"}\n'
    stamp = RemoteTSA(pki.tsa_url, 10).timestamp(hashlib.sha256(data).digest(), datetime.now(UTC))
    assert stamp.tsa == pki.tsa_url and not stamp.qualified
    (tmp_path / "r.json").write_bytes(data)
    (tmp_path / "r.tsr").write_bytes(stamp.response_der)
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    proc = subprocess.run(["openssl", "ts", "-verify", "-data", "r.json", "-in", "r.tsr", "-CAfile", "root.pem"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_submit_with_tsa_down_keeps_the_bid_a_draft(stack: Stack) -> None:
    settings = replace(stack.settings, timestamping={"tsa_url": f"http://127.0.0.1:{free_port()}/tsa",
                                                      "timeout_seconds": 3})
    rt = Runtime(settings, clock=stack.clock)
    try:
        desk = Desk(rt)
        create_api_key(rt.db, "platform-tsa", rt.clock())
        with rt.db.session() as s:
            tenant = s.execute(select(TenantRow.id).where(TenantRow.name == "platform-tsa")).scalar_one()
        tender = desk.create_tender(tenant, "T-TSA", "t", "b", stack.clock().replace(year=stack.clock().year + 1))
        bid = desk.create_bid(tenant, tender.id, "ACME")
        up = desk.begin_upload(tenant, bid.id, "offre.txt")
        up.write(b"offre")
        up.commit()
        with pytest.raises(BidprocError) as err:
            desk.submit(tenant, bid.id)
        assert err.value.code is Code.TIMESTAMP_UNAVAILABLE
        status = desk.status(tenant, bid.id)
        assert status["status"] == "draft" and [f["name"] for f in status["files"]] == ["offre.txt"]
    finally:
        rt.close()
