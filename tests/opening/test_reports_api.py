"""Signature reports in four forms, sealed with the bid, readable by the buyer after the opening only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from lxml import etree

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, open_tender, tender
from tests.pki import TestPKI
from tests.signature.signing import make_pdf, sign_pdf


def test_buyer_reads_each_report_form_after_the_opening(tmp_path: Path, pki: TestPKI, s3_endpoint: str,
                                                        clamd_settings: ClamdSettings, postgres_url: str,
                                                        redis_url: str) -> None:
    (tmp_path / "root.der").write_bytes(pki.root_der)
    stack = Stack(tmp_path, s3_endpoint, clamd_settings,
                  env={"BIDPROC_SIGNATURE_TRUST_ANCHOR_FILES": str(tmp_path / "root.der")})
    try:
        stack.start_worker()
        platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
        t = tender(stack, platform)
        share = t["opening"]["shares"][0]["share"]
        signed = sign_pdf(make_pdf("Acte d'engagement"), pki, level="B-LT")
        bid = deposit(platform, t["id"], {"ae.pdf": signed, "annexe.txt": b"annexe"})
        status = stack.wait_status(platform, bid, timeout=180)
        assert status["status"] == "processed", status
        assert status["signatures"]["ae.pdf"]["indications"] == ["TOTAL_PASSED"], status

        early = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.pdf")
        assert early.status_code == 409 and early.json()["code"] == "opening.too_early"
        stack.clock.offset = timedelta(hours=1, seconds=1)
        assert open_tender(buyer, t["id"], [share])["opened"] == [bid]

        as_json = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.json")
        assert as_json.status_code == 200 and json.loads(as_json.content)["signatures"][0]["indication"] == (
            "TOTAL_PASSED")
        xml = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.xml")
        assert xml.status_code == 200 and etree.QName(etree.fromstring(xml.content)).localname == "ValidationReport"
        html = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.html")
        assert html.status_code == 200 and "Signature valide" in html.text and "ae.pdf" in html.text
        pdf = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-") and b"/ByteRange" in pdf.content
        assert buyer.get(f"/v1/bids/{bid}/reports/annexe.txt.pdf").json()["code"] == "file.not_found"
        assert buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.docx").json()["code"] == "request.invalid"
        assert platform.get(f"/v1/bids/{bid}/reports/ae.pdf.json").json()["code"] == "auth.forbidden_role"
        assert len([e for e in journal(stack, "document.read", bid) if e.detail.get("report")]) == 4
    finally:
        stack.close()
