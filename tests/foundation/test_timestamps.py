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


def test_local_tsa_signs_with_its_loaded_key_what_pyhanko_would(stack: Stack, tmp_path: Path) -> None:
    """The embedded TSA signs with the key it loaded once (pyhanko's stamper re-parsed it per token): the
    token must still verify with openssl and carry the same signed attributes as pyhanko's own path."""
    from asn1crypto import tsp

    from bidproc.timestamps.tsa import LOCAL_TSA_POLICY, LocalTSA, _policy_stamper_class
    from bidproc.timestamps.verify import verify_response

    data, now = b'{"receipt": "bytes"}\n', datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    tsa = LocalTSA(stack.rt.local_pki)
    stamp = tsa.timestamp(hashlib.sha256(data).digest(), now)
    assert stamp.time == now
    verify_response(stamp.response_der, hashlib.sha256(data).digest(), stack.rt.tsa_roots)
    (tmp_path / "r.json").write_bytes(data)
    (tmp_path / "r.tsr").write_bytes(stamp.response_der)
    (tmp_path / "tsa.pem").write_bytes(stack.rt.local_pki.chain_pem(stack.rt.local_pki.tsa))
    proc = subprocess.run(["openssl", "ts", "-verify", "-data", "r.json", "-in", "r.tsr", "-CAfile", "tsa.pem"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def signed_attributes(response_der: bytes) -> dict[str, object]:
        token = tsp.TimeStampResp.load(response_der)["time_stamp_token"]["content"]
        info = token["encap_content_info"]["content"].parsed
        assert info["policy"].dotted == LOCAL_TSA_POLICY
        return {a["type"].native: a["values"].native for a in token["signer_infos"][0]["signed_attrs"]}

    # pyhanko's own signing path (the key parsed from DER) for the same request time
    stamper = _policy_stamper_class()(tsa_cert=tsa._cert, tsa_key=tsa._key, fixed_dt=now)
    _, request = stamper.request_cms(hashlib.sha256(data).digest(), "sha256")
    theirs = signed_attributes(stamper.request_tsa_response(request).dump())
    mine = signed_attributes(stamp.response_der)
    assert set(mine) == set(theirs) == {"content_type", "signing_time", "signing_certificate", "message_digest"}
    assert {k: v for k, v in mine.items() if k != "message_digest"} == {
        k: v for k, v in theirs.items() if k != "message_digest"}  # the digest covers a fresh serial and nonce
