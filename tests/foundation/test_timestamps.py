"""Receipts timestamped by a TSA reached over HTTP, and what happens when it is down."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlalchemy import select

from bidproc.config import replace
from bidproc.desk.deposit import Desk
from bidproc.desk.tenants import create_api_key
from bidproc.errors import BidprocError, Code
from bidproc.metadata.models import TenantRow
from bidproc.runtime import Runtime
from bidproc.timestamps.tsa import RemoteTSA
from tests.foundation.stack import Stack
from tests.pki import TestPKI
from tests.services import free_port


def test_remote_tsa_token_verifies_with_openssl(pki: TestPKI, tmp_path: Path) -> None:
    data = b'{"receipt": "bytes"}\n'
    stamp = RemoteTSA(pki.tsa_url, 10, roots=(pki.root_der,)).timestamp(hashlib.sha256(data).digest(),
                                                                         datetime.now(UTC))
    assert stamp.tsa == pki.tsa_url and not stamp.qualified
    (tmp_path / "r.json").write_bytes(data)
    (tmp_path / "r.tsr").write_bytes(stamp.response_der)
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    proc = subprocess.run(["openssl", "ts", "-verify", "-data", "r.json", "-in", "r.tsr", "-CAfile", "root.pem"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_remote_tsa_not_chaining_to_the_configured_roots_is_refused(pki: TestPKI, stack: Stack) -> None:
    other_root = stack.rt.tsa_roots  # the embedded PKI's root: not the test TSA's
    with pytest.raises(BidprocError) as err:
        RemoteTSA(pki.tsa_url, 10, roots=other_root).timestamp(hashlib.sha256(b"x").digest(), datetime.now(UTC))
    assert err.value.code is Code.TIMESTAMP_INVALID


def test_tsa_down_at_submit_falls_back_to_the_embedded_tsa(stack: Stack, tmp_path: Path) -> None:
    """An outage of the configured TSA must not make an on-time bid late: the embedded TSA stamps it."""
    roots = tmp_path / "roots.pem"
    roots.write_bytes(pem.armor("CERTIFICATE", stack.rt.tsa_roots[0]))
    settings = replace(stack.settings, timestamping={"tsa_url": f"http://127.0.0.1:{free_port()}/tsa",
                                                      "timeout_seconds": 3, "tsa_roots": str(roots)})
    rt = Runtime(settings, clock=stack.clock)
    try:
        desk = Desk(rt)
        create_api_key(rt.db, "platform-tsa", rt.clock())
        with rt.db.session() as s:
            tenant = s.execute(select(TenantRow.id).where(TenantRow.name == "platform-tsa")).scalar_one()
        tender = desk.create_tender(tenant, "T-TSA", "t", "b", stack.clock() + timedelta(minutes=5))
        bid = desk.create_bid(tenant, tender.id, "ACME")
        up = desk.begin_upload(tenant, bid.id, "offre.txt")
        up.write(b"offre")
        up.commit()
        row, receipt = desk.submit(tenant, bid.id)
        assert row.status == "submitted" and not row.late
        body = json.loads(receipt.body)
        assert body["on_time"] is True
        authority = body["timestamp_authority"]["name"]
        assert "fallback" in authority and "NOT QUALIFIED" in authority
        (tmp_path / "r.json").write_bytes(receipt.body)
        (tmp_path / "r.tsr").write_bytes(receipt.timestamp.response_der)
        (tmp_path / "tsa.pem").write_bytes(rt.local_pki.chain_pem(rt.local_pki.tsa))
        proc = subprocess.run(["openssl", "ts", "-verify", "-data", "r.json", "-in", "r.tsr", "-CAfile", "tsa.pem"],
                              cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    finally:
        rt.close()
