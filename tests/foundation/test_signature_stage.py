"""The pipeline's signature stage: a signed PDF in a bid gets a validation report, stored sealed."""

from __future__ import annotations

import io
import json
from pathlib import Path

from asn1crypto import pem

from bidproc.archive.store import bid_prefix
from bidproc.config import ClamdSettings
from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.encryption.envelope import unseal
from bidproc.encryption.stage import sealed_key
from bidproc.metadata.models import StageRunRow, TenderRow
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
        assert status["stages"] == ["archive", "encryption", "intake", "signature"]
        with stack.rt.db.session() as s:
            run = s.get(StageRunRow, (bid["id"], "signature"))
            row = s.get(TenderRow, tender["id"])
            assert run is not None and row is not None and row.opening is not None
            summary, opening = run.result or {}, row.opening
        assert set(summary["reports"]) == {"ae-signe.pdf"}
        entry = summary["reports"]["ae-signe.pdf"]
        assert entry["indications"] == ["TOTAL_PASSED"] and entry["bottom_line"] is True
        # the report is sealed to the tender's opening key (the encryption stage), and says what a legal
        # team needs; the tender's one share (the default committee of one) opens it
        blob = stack.rt.store.get_bytes(sealed_key(bid_prefix(tender["id"], bid["id"]), entry["object_key"]))
        assert b"TOTAL_PASSED" not in blob
        private = combine(tender_keys.committee_key(opening), [tender["opening"]["shares"][0]["share"]])
        plain = io.BytesIO()
        unseal(io.BytesIO(blob), plain, private, tender_keys.certificates(opening)[0])
        report = json.loads(plain.getvalue())
        sig = report["signatures"][0]
        assert sig["format"] == "PAdES" and sig["indication"] == "TOTAL_PASSED" and sig["signer"]["common_name"]
    finally:
        stack.close()
