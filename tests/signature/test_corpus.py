"""Every file of ../shared/corpus/pades and cades with the outcome EXPECTED.md fixes (no trust anchor)."""

from __future__ import annotations

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.validate import validate_file, validate_files
from tests.services import SHARED

PADES = SHARED / "corpus" / "pades"
CADES = SHARED / "corpus" / "cades"
OFFLINE = ValidationPolicy(offline=True)


def only_signature(path: str) -> SignatureReport:
    file = SHARED / "corpus" / path
    report = validate_file(file.name, file.read_bytes(), OFFLINE)
    assert not report.bottom_line and len(report.signatures) == 1, report
    return report.signatures[0]


def test_every_corpus_file_is_covered() -> None:
    assert {p.name for p in PADES.iterdir()} == {
        "pdf-signed-added-page.pdf",
        "pdf-signed-corrupted.pdf",
        "pdf-signed-out-of-byteRange.pdf",
        "pades-signed-filled-form.pdf",
        "Signature-P-HU_NET-2.pdf",
    }
    assert {p.name for p in CADES.iterdir()} == {"cms-no-sign-cert.p7m"}


def test_added_page_is_reported_and_fails() -> None:
    sig = only_signature("pades/pdf-signed-added-page.pdf")
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert [(m.kind, m.allowed) for m in sig.modifications] == [("page_added", False)]
    assert "pdf.incremental_saving_attack" in sig.warnings


def test_corrupted_signed_bytes_are_a_hash_failure() -> None:
    sig = only_signature("pades/pdf-signed-corrupted.pdf")
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert sig.signer is not None and sig.signer.common_name == "good-user"


def test_content_outside_byte_range_is_not_intact() -> None:
    sig = only_signature("pades/pdf-signed-out-of-byteRange.pdf")
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert "pdf.signature_wrapping" in sig.warnings


def test_form_filled_after_signing_is_reported() -> None:
    sig = only_signature("pades/pades-signed-filled-form.pdf")
    assert sig.indication is not Indication.TOTAL_PASSED
    filled = [m for m in sig.modifications if m.kind == "form_filling"]
    assert filled and all(m.revision > 0 for m in filled)


def test_invalid_digest_algorithm_never_passes() -> None:
    sig = only_signature("pades/Signature-P-HU_NET-2.pdf")
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE)


def test_cms_without_signing_certificate() -> None:
    sig = only_signature("cades/cms-no-sign-cert.p7m")
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND)


@pytest.mark.parametrize("folder", ["pades", "cades"])
def test_whole_folders_never_pass(folder: str) -> None:
    files = {p.name: p.read_bytes() for p in (SHARED / "corpus" / folder).iterdir()}
    reports = validate_files(files, OFFLINE)
    assert set(reports) == set(files)
    assert not any(r.bottom_line for r in reports.values())
