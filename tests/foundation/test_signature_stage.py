"""The pipeline's signature stage: a signed PDF in a bid gets a validation report, stored encrypted."""

from __future__ import annotations

import json
from pathlib import Path

from asn1crypto import pem

from bidproc.config import ClamdSettings
from bidproc.encryption.stream import decrypt_bytes
from bidproc.metadata.models import BidRow, StageRunRow
from tests.foundation.stack import Stack
from tests.pki import TestPKI
from tests.signature.signing import make_pdf, sign_pdf


def test_signed_pdf_in_a_bid_gets_a_stored_report(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings,
                                                  redis_url: str, postgres_url: str, pki: TestPKI) -> None:
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    stack = Stack(tmp_path / "stack", s3_endpoint, clamd_settings,
                  env={"BIDPROC_SIGNATURE_TRUST_ANCHOR_FILES": str(anchor)})
    try:
        stack.start_worker()
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        signed = sign_pdf(make_pdf("Acte d'engagement"), pki, level="B-LT")
        assert http.put(f"/v1/bids/{bid['id']}/files/ae-signe.pdf", content=signed).status_code == 201
        assert http.put(f"/v1/bids/{bid['id']}/files/memoire.txt", content=b"memoire").status_code == 201
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        status = stack.wait_status(http, bid["id"])
        assert status["status"] == "processed", status
        assert status["signatures"] == {"ae-signe.pdf": {"bottom_line": True, "indications": ["TOTAL_PASSED"]}}
        assert status["stages"] == ["archive", "intake", "signature"]
        with stack.rt.db.session() as s:
            run = s.get(StageRunRow, (bid["id"], "signature"))
            row = s.get(BidRow, bid["id"])
            assert run is not None and row is not None
            summary, wrapped = run.result or {}, row.wrapped_key
        assert set(summary["reports"]) == {"ae-signe.pdf"}
        entry = summary["reports"]["ae-signe.pdf"]
        assert entry["indications"] == ["TOTAL_PASSED"] and entry["bottom_line"] is True
        # the report is stored encrypted under the bid's key, and says what a legal team needs
        blob = stack.rt.store.get_bytes(entry["object_key"])
        assert b"TOTAL_PASSED" not in blob
        report = json.loads(decrypt_bytes(stack.rt.service_key.unwrap(wrapped), blob,
                                          context=entry["object_key"].encode()))
        sig = report["signatures"][0]
        assert sig["format"] == "PAdES" and sig["indication"] == "TOTAL_PASSED" and sig["signer"]["common_name"]
    finally:
        stack.close()
