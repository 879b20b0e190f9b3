"""Stage outcomes are typed values whose stored JSON keeps the shape clients and packages already read."""

from __future__ import annotations

import json

from bidproc.domain import Verdict
from bidproc.errors import Code
from bidproc.intake.verdict import FileVerdict, MalwareTrace
from bidproc.pipeline.outcomes import ArchiveOutcome, DocumentOutcome, SignatureOutcome, SignedDocument


def test_document_outcome_stores_the_documents_row_as_before() -> None:
    trace = MalwareTrace("offre.zip/x.com", "Eicar-Signature", "ab" * 32)
    found = FileVerdict("offre.zip", "cd" * 32, 68, "application/zip", "zip", Verdict.QUARANTINED,
                        Code.MALWARE_DETECTED.value, malware=(trace,), message="malware in a member")
    rendition = {"name": "r.pdf", "object_key": "tenders/t/bids/b/renditions/d/0.enc"}
    outcome = DocumentOutcome.inspected(found, [rendition])
    assert outcome.verdict is Verdict.QUARANTINED and outcome.code is Code.MALWARE_DETECTED
    detail = outcome.detail_json()
    assert list(detail) == ["report", "malware", "message"]  # the column's key order, unchanged
    assert detail["report"] == {**found.to_json(), "renditions": [rendition]}
    assert list(detail["report"]) == list(found.to_json())  # renditions replaced in place, not appended
    assert detail["malware"] == [{"path": "offre.zip/x.com", "signature": "Eicar-Signature", "sha256": "ab" * 32}]
    assert detail["message"] == "malware in a member"


def test_refusals_and_skips_keep_their_stored_form() -> None:
    assert DocumentOutcome.not_read().detail_json() == {
        "report": {}, "malware": [], "message": "not read: another file of this bid carries malware"}
    assert (DocumentOutcome.not_read().verdict, DocumentOutcome.not_read().code) == (
        Verdict.QUARANTINED, Code.BID_QUARANTINED)
    crashed = DocumentOutcome.refused(Code.PARSE_CRASHED, "the document sandbox died on this document")
    assert (crashed.verdict, crashed.code, crashed.detail_json()["report"]) == (Verdict.REJECTED,
                                                                               Code.PARSE_CRASHED, {})
    assert json.dumps(SignatureOutcome.not_read().to_json()) == '{"skipped": "malware.detected"}'
    signed = SignatureOutcome({"offre.pdf": SignedDocument("k.json.enc", ("json", "xml"), True, ("TOTAL_PASSED",))},
                              ("huge.pdf",))
    assert signed.to_json() == {"skipped_too_large": ["huge.pdf"], "reports": {"offre.pdf": {
        "object_key": "k.json.enc", "forms": ["json", "xml"], "bottom_line": True, "indications": ["TOTAL_PASSED"]}}}
    assert ArchiveOutcome(7, "archive/t/b/v1").to_json() == {"objects": 7, "evidence": "archive/t/b/v1"}


def test_the_signature_outcome_reads_back_what_it_stored() -> None:
    done = SignatureOutcome({"offre.pdf": SignedDocument("t/b/reports/d.json.enc", ("json", "xml"), False,
                                                         ("TOTAL_FAILED",))}, ("big.pdf",))
    assert SignatureOutcome.from_json(json.loads(json.dumps(done.to_json()))) == done
    assert SignatureOutcome.from_json(SignatureOutcome.not_read().to_json()) == SignatureOutcome.not_read()
    assert SignatureOutcome.from_json({}) == SignatureOutcome()  # the stage has not run
    # a row written before the report forms existed
    old = SignatureOutcome.from_json({"reports": {"a.p7s": {"object_key": "k", "bottom_line": True,
                                                            "indications": ["TOTAL_PASSED"]}}})
    assert old.reports["a.p7s"] == SignedDocument("k", ("json",), True, ("TOTAL_PASSED",))
