"""Every file of ../shared/corpus/pades and cades with the outcome EXPECTED.md fixes.

EXPECTED.md fixes the integrity and format verdicts with no trust anchor. With none, nothing chains and
the AdES process never passes, so the rule "never TOTAL_PASSED when what a reader sees changed after
signing" is never the deciding one. So each integrity test also runs with the corpus signer trusted:
its own certificate, read from the file, is the trust anchor (a trust anchor needs no revocation data,
and the roots of these test PKIs are not in the files), at the time the signature claims. The AdES
process then passes (``certificate_valid_at_signing_time`` passed) and the verdict is the modification
gating's; the signed revision alone, cut from the same file, passes: the control.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, RuleOutcome, SignatureReport, SubIndication
from bidproc.signature.validate import validate_file, validate_files
from tests.corpus import corpus_dir, signer_of_file

OFFLINE = ValidationPolicy(offline=True)


def trusted(path: str) -> ValidationPolicy:
    """The file's signer certificate as the only trust anchor, a minute after the claimed signing time."""
    signer = signer_of_file(corpus_dir() / path)
    assert signer is not None and signer.signing_time is not None, path
    return ValidationPolicy(
        trust_anchors=(signer.certificate.dump(),), offline=True, at=signer.signing_time + timedelta(minutes=1)
    )


def only_signature(path: str, policy: ValidationPolicy = OFFLINE, data: bytes | None = None) -> SignatureReport:
    file = corpus_dir() / path
    report = validate_file(file.name, file.read_bytes() if data is None else data, policy)
    assert len(report.signatures) == 1, report
    assert report.bottom_line is (report.signatures[0].indication is Indication.TOTAL_PASSED)
    return report.signatures[0]


def signed_revision(path: str) -> bytes:
    """The file cut at the end of its signature's byte range: the revision the signer signed, nothing after."""
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    data = (corpus_dir() / path).read_bytes()
    byte_range = PdfFileReader(BytesIO(data), strict=False).embedded_signatures[0].byte_range
    return data[: byte_range[2] + byte_range[3]]


def test_every_corpus_file_is_covered() -> None:
    assert {p.name for p in corpus_dir("pades").iterdir()} == {
        "pdf-signed-added-page.pdf",
        "pdf-signed-corrupted.pdf",
        "pdf-signed-out-of-byteRange.pdf",
        "pades-signed-filled-form.pdf",
        "Signature-P-HU_NET-2.pdf",
    }
    assert {p.name for p in corpus_dir("cades").iterdir()} == {"cms-no-sign-cert.p7m"}


def test_added_page_is_reported_and_fails() -> None:
    path = "pades/pdf-signed-added-page.pdf"
    for policy in (OFFLINE, trusted(path)):
        sig = only_signature(path, policy)
        assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
        assert [(m.kind, m.allowed) for m in sig.modifications] == [("page_added", False)]
        assert "pdf.incremental_saving_attack" in sig.warnings
    # trusted, the AdES process passed: the added page alone decides the failure
    assert sig.french_rule is not None and sig.french_rule.certificate_valid_at_signing_time is RuleOutcome.PASSED
    control = only_signature(path, trusted(path), signed_revision(path))
    assert (control.indication, control.modifications) == (Indication.TOTAL_PASSED, ())


def test_corrupted_signed_bytes_are_a_hash_failure() -> None:
    path = "pades/pdf-signed-corrupted.pdf"
    for policy in (OFFLINE, trusted(path)):
        sig = only_signature(path, policy)
        assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
        assert sig.signer is not None and sig.signer.common_name == "good-user"


def test_content_outside_byte_range_is_not_intact() -> None:
    path = "pades/pdf-signed-out-of-byteRange.pdf"
    for policy in (OFFLINE, trusted(path)):
        sig = only_signature(path, policy)
        assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
        assert "pdf.signature_wrapping" in sig.warnings


def test_form_filled_after_signing_is_reported() -> None:
    """pyhanko's difference analysis does not explain these changes (a choice field's /I entry with the
    values): with the signer trusted the signature that would pass fails on them, and says why."""
    path = "pades/pades-signed-filled-form.pdf"
    for policy in (OFFLINE, trusted(path)):
        sig = only_signature(path, policy)
        assert sig.indication is not Indication.TOTAL_PASSED
        filled = [m for m in sig.modifications if m.kind == "form_filling"]
        assert filled and all(m.revision > 0 for m in filled)
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert sig.french_rule is not None and sig.french_rule.certificate_valid_at_signing_time is RuleOutcome.PASSED
    assert any(w.startswith("pdf.diff_analysis") for w in sig.warnings)
    control = only_signature(path, trusted(path), signed_revision(path))
    assert (control.indication, control.modifications) == (Indication.TOTAL_PASSED, ())


def test_invalid_digest_algorithm_never_passes() -> None:
    path = "pades/Signature-P-HU_NET-2.pdf"
    for policy in (OFFLINE, trusted(path)):
        sig = only_signature(path, policy)
        assert (sig.indication, sig.subindication) == (
            Indication.INDETERMINATE,
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        )


def test_cms_without_signing_certificate() -> None:
    """No certificate in the file: nothing to trust, and nothing an anchor could change."""
    sig = only_signature("cades/cms-no-sign-cert.p7m")
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND)


@pytest.mark.parametrize("folder", ["pades", "cades"])
def test_whole_folders_never_pass(folder: str) -> None:
    files = {p.name: p.read_bytes() for p in corpus_dir(folder).iterdir()}
    reports = validate_files(files, OFFLINE)
    assert set(reports) == set(files)
    assert not any(r.bottom_line for r in reports.values())
