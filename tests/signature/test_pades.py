"""PAdES against the live test PKI (OCSP, CRLs and TSA on loopback): issue 5's PAdES list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SignatureReport, SubIndication
from bidproc.signature.validate import content_sha256, validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.signing import (
    annotate,
    certify_pdf,
    fetch_crl,
    fetch_ocsp,
    flip_signed_byte,
    overwrite_content,
    sign_pdf,
    tamper_incremental,
)


def sigs(pki: TestPKI, data: bytes, **policy: object) -> list[SignatureReport]:
    report = validate_file("bid.pdf", data, ValidationPolicy(trust_anchors=(pki.root_der,), **policy))  # type: ignore[arg-type]
    assert not report.problems
    return list(report.signatures)


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_valid_signature_at_each_level(pki: TestPKI, signed: dict[str, bytes], level: str) -> None:
    found = sigs(pki, signed[level])
    sig = found[0]
    assert (sig.indication, sig.subindication, sig.level) == (Indication.TOTAL_PASSED, None, Level(level))
    assert sig.signer is not None and sig.signer.common_name == "Alice Martin"
    assert sig.signer.serial_number == "FR-123456789"
    assert sig.french_rule is not None and sig.french_rule.bottom_line
    assert sig.french_rule.certificate_category is RuleOutcome.NOT_CHECKED
    assert all(m.allowed for m in sig.modifications)
    if level != "B-B":
        stamp = next(t for t in sig.timestamps if t.kind == "signature")
        assert stamp.valid and stamp.tsa is not None and "TSA" in stamp.tsa
        assert sig.best_signature_time == stamp.time
    if level == "B-LTA":  # the document timestamp is the archive timestamp (EN 319 102-1 §5.6), not a signature
        assert len(found) == 1
        assert [t.valid for t in sig.timestamps if t.kind == "archive"] == [True]
        assert {m.kind for m in sig.modifications} <= {"signature", "other"}


def test_long_term_levels_validate_offline_from_embedded_data(pki: TestPKI, signed: dict[str, bytes]) -> None:
    for level in ("B-LT", "B-LTA"):
        assert sigs(pki, signed[level], offline=True)[0].indication is Indication.TOTAL_PASSED, level


def test_offline_without_embedded_revocation_data_is_try_later(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """Documented offline behaviour: B-B/B-T carry no revocation data, so nothing can be concluded."""
    sig = sigs(pki, signed["B-T"], offline=True)[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    assert any(w.startswith("signature.offline_no_revocation") for w in sig.warnings)


def test_expired_signer(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, signed["expired"])[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)
    assert sig.french_rule is not None and "certificate_valid_at_signing_time" in sig.french_rule.failed


def test_revoked_before_signing_is_revoked(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, signed["revoked-before"])[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    # the timestamp that proves the signature came after the revocation is listed (not vouched for)
    assert [t.kind for t in sig.timestamps] == ["signature"] and sig.best_signature_time == sig.timestamps[0].time
    assert sig.french_rule is not None and "certificate_valid_at_signing_time" in sig.french_rule.failed


def test_revoked_after_signing_with_timestamp_passes(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """Validated a day later, with the responder's answer of that day (revoked an hour after t0)."""
    later = pki.t0 + timedelta(days=1)
    ocsp = fetch_ocsp(pki, "revoked-after", later)
    crl = fetch_crl(pki, "root", later)  # for the issuing CA and the TSA
    policy = dict(offline=True, at=later, extra_ocsps=(ocsp,), extra_crls=(crl,))
    sig = sigs(pki, signed["revoked-after"], **policy)[0]
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors)
    assert sig.best_signature_time is not None and sig.best_signature_time < pki.t0 + timedelta(hours=1)
    # without a timestamp there is no proof the signature predates the revocation
    bare = sigs(pki, signed["revoked-after-B-B"], **policy)[0]
    assert (bare.indication, bare.subindication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)


def test_untrusted_root(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, signed["rogue-signer"])[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.NO_CERTIFICATE_CHAIN_FOUND)


def test_no_trust_anchor_never_uses_the_os_store(signed: dict[str, bytes]) -> None:
    sig = validate_file("bid.pdf", signed["B-T"], ValidationPolicy()).signatures[0]
    assert sig.subindication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_bytes_flipped_inside_signed_range(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, flip_signed_byte(signed["B-T"]))[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert sig.french_rule is not None and "integrity" in sig.french_rule.failed


def test_page_added_and_text_changed_after_signing(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, tamper_incremental(signed["B-T"]))[0]
    assert sig.indication is not Indication.TOTAL_PASSED
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert sig.signed_data == ("revision 1 (1 page), 1 later revision",)
    kinds = {m.kind for m in sig.modifications if not m.allowed}
    assert {"page_added", "content_changed"} <= kinds
    assert "pdf.incremental_saving_attack" in sig.warnings and "pdf.shadow_attack" in sig.warnings
    assert sig.french_rule is not None and "integrity" in sig.french_rule.failed


def test_text_changed_only_is_named_shadow_attack(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, tamper_incremental(signed["B-T"], add_page=False))[0]
    assert sig.indication is Indication.TOTAL_FAILED
    assert [m.kind for m in sig.modifications] == ["content_changed"]
    assert "pdf.shadow_attack" in sig.warnings


def test_second_signature_is_an_allowed_change(pki: TestPKI, signed: dict[str, bytes]) -> None:
    both = sign_pdf(signed["B-T"], pki, level="B-T", field="Signature2")
    first, second = sigs(pki, both)
    assert first.indication is Indication.TOTAL_PASSED and second.indication is Indication.TOTAL_PASSED
    assert [(m.kind, m.allowed) for m in first.modifications] == [("signature", True)]
    assert second.modifications == ()


def test_certification_attack(pki: TestPKI, pdf: bytes) -> None:
    """A certified document (no changes allowed) signed again and altered: the certification fails."""
    certified = certify_pdf(pdf, pki)
    assert sigs(pki, certified)[0].indication is Indication.TOTAL_PASSED
    sig = sigs(pki, tamper_incremental(certified, add_page=False))[0]
    assert sig.indication is Indication.TOTAL_FAILED
    assert "pdf.certification_attack" in sig.warnings


def test_ocsp_responder_down_online_is_try_later(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, signed["ocsp-down"], fetch_timeout_seconds=3.0)[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    offline = sigs(pki, signed["ocsp-down"], offline=True)[0]
    assert (offline.indication, offline.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


def test_deposit_timestamp_counts_as_proof_of_existence(pki: TestPKI, signed: dict[str, bytes]) -> None:
    data = signed["B-B"]
    earlier = pki.t0 - timedelta(minutes=5)
    sig = sigs(pki, data, proofs_of_existence=((content_sha256(data), earlier),))[0]
    assert sig.best_signature_time == earlier
    assert any(t.kind == "deposit" for t in sig.timestamps)


def test_visible_annotation_after_approval_signature_is_a_shadow_hide(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, annotate(signed["B-T"]))[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert [(m.kind, m.allowed) for m in sig.modifications] == [("annotation", False)]
    assert "FreeText" in sig.modifications[0].detail and "pdf.shadow_attack" in sig.warnings


def test_any_annotation_after_signing_is_refused_even_hidden_or_under_p3(
    pki: TestPKI, pdf: bytes, signed: dict[str, bytes]
) -> None:
    """pyhanko's diff policy has no whitelist rule for annotations: even a hidden one, or one on a
    document certified with P=3, is an unexplained change. Strict (a false alarm at worst, never a
    false pass); the report still says exactly what was added."""
    hidden = sigs(pki, annotate(signed["B-T"], hidden=True))[0]
    assert hidden.indication is Indication.TOTAL_FAILED
    assert [m.kind for m in hidden.modifications] == ["annotation"]
    certified = sigs(pki, annotate(certify_pdf(pdf, pki, permission=3)))[0]
    assert certified.indication is Indication.TOTAL_FAILED
    assert [m.kind for m in certified.modifications] == ["annotation"]


def test_unreadable_signature_dictionary_is_universal_signature_forgery(pki: TestPKI, signed: dict[str, bytes]) -> None:
    forged = signed["B-T"].replace(b"/ByteRange", b"/ByteRangX", 1)
    sig = sigs(pki, forged)[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert "pdf.universal_signature_forgery" in sig.warnings


def test_revocation_data_fetched_once_per_run(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """Online, an OCSP answer fetched for one signature serves the others of the same bid."""
    files = {f"{n}.pdf": sign_pdf(signed["B-T"], pki, field=f"Extra{n}") for n in range(3)}
    before = len(pki.requests)
    reports = validate_files(files, ValidationPolicy(trust_anchors=(pki.root_der,)))
    assert all(r.bottom_line for r in reports.values()) and sum(len(r.signatures) for r in reports.values()) == 6
    ocsp = [p for p in pki.requests[before:] if "/ocsp/" in p]
    assert len(ocsp) == 1, pki.requests[before:]


def test_three_years_later_after_signer_expiry(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """With that day's revocation data (the validator would fetch it online), the timestamps prove the
    signatures existed while the certificate was valid; B-B has no such proof."""
    later = pki.t0 + timedelta(days=3 * 365)
    assert later > pki.cert("signer")["tbs_certificate"]["validity"]["not_after"].native
    crls = (fetch_crl(pki, "root", later), fetch_crl(pki, "interm", later))
    policy = dict(offline=True, at=later, extra_crls=crls, extra_ocsps=(fetch_ocsp(pki, "signer", later),))
    for level in ("B-T", "B-LT", "B-LTA"):
        sig = sigs(pki, signed[level], **policy)[0]
        assert sig.indication is Indication.TOTAL_PASSED, (level, sig.subindication, sig.errors)
        assert sig.best_signature_time is not None and sig.best_signature_time < pki.t0 + timedelta(minutes=10)
    bare = sigs(pki, signed["B-B"], **policy)[0]
    assert (bare.indication, bare.subindication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)


def test_offline_a_year_later_without_fresh_revocation_data_is_indeterminate(
    pki: TestPKI, signed: dict[str, bytes]
) -> None:
    """Documented offline behaviour: embedded revocation data ages (pyhanko judges it within its
    thisUpdate..nextUpdate window); without fresher data the verdict is INDETERMINATE, never a pass."""
    later = pki.t0 + timedelta(days=365)
    for level in ("B-LT", "B-LTA"):
        sig = sigs(pki, signed[level], offline=True, at=later)[0]
        assert sig.indication is Indication.INDETERMINATE, level
        assert sig.subindication in {SubIndication.TRY_LATER, SubIndication.NO_POE}


def test_content_object_redefined_after_signing_is_shadow_replace(pki: TestPKI, signed: dict[str, bytes]) -> None:
    sig = sigs(pki, overwrite_content(signed["B-T"]))[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert [(m.kind, m.allowed) for m in sig.modifications] == [("content_changed", False)]
    assert "pdf.shadow_attack" in sig.warnings and "pdf.incremental_saving_attack" in sig.warnings


def test_sneaky_signature_after_certification(pki: TestPKI, pdf: bytes) -> None:
    """Certified with P=2 (form filling and signing allowed), then a new *visible* signature field whose
    appearance can cover the certified content: refused (pyhanko's rule, stricter than Acrobat)."""
    from tests.signature.signing import certify_pdf

    certified = certify_pdf(pdf, pki, permission=2)
    invisible = sigs(pki, sign_pdf(certified, pki, field="Approval"))
    assert [s.indication for s in invisible] == [Indication.TOTAL_PASSED, Indication.TOTAL_PASSED]
    visible = sigs(pki, sign_pdf(certified, pki, field="Approval", box=(60, 700, 540, 800)))
    assert visible[0].indication is Indication.TOTAL_FAILED
    assert "pdf.certification_attack" in visible[0].warnings


def test_hostile_counts_are_bounded(pki: TestPKI, signed: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of revisions or signatures cost a bounded amount of work and never pass (caps lowered here)."""
    from bidproc.signature.pades import modifications
    from bidproc.signature.pades import validator as pades

    two = sign_pdf(signed["B-T"], pki, field="Signature2")
    monkeypatch.setattr(pades, "MAX_SIGNATURES", 1)
    reports = sigs(pki, two)
    assert [r.indication for r in reports] == [Indication.TOTAL_FAILED, Indication.TOTAL_PASSED]
    assert "too many signatures" in reports[0].errors[0]
    monkeypatch.setattr(modifications, "MAX_REVISIONS_WALKED", 1)
    first = sigs(pki, tamper_incremental(two, add_page=False))[1]
    assert first.indication is Indication.TOTAL_FAILED
    assert [(m.kind, m.allowed) for m in first.modifications] == [("other", False)]


def test_revoked_before_signing_then_expired_does_not_pass(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """Years later the compromised certificate has also expired: it must still fail, not pass on its POE."""
    from asn1crypto import ocsp as asn1_ocsp

    from tests.signature.signing import fetch_crl, fetch_ocsp

    later = pki.t0 + timedelta(days=731)
    status = fetch_ocsp(pki, "revoked-before", later)
    cert_status = asn1_ocsp.OCSPResponse.load(status)["response_bytes"]["response"].parsed[
        "tbs_response_data"]["responses"][0]["cert_status"]
    assert cert_status.name == "revoked"
    with_data = ValidationPolicy(trust_anchors=(pki.root_der,), offline=True, at=later,
                                 extra_crls=(fetch_crl(pki, "root", later),), extra_ocsps=(status,))
    sig = validate_file("offre.pdf", signed["revoked-before"], with_data).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    assert sig.french_rule is not None and sig.french_rule.certificate_valid_at_signing_time is RuleOutcome.FAILED
    without_data = ValidationPolicy(trust_anchors=(pki.root_der,), offline=True, at=later)
    sig = validate_file("offre.pdf", signed["revoked-before"], without_data).signatures[0]
    assert sig.indication is not Indication.TOTAL_PASSED


def test_form_filled_after_an_approval_signature_is_reported(pki: TestPKI) -> None:
    """No DocMDP: filling the form is allowed, yet the reader sees a value that was not signed."""
    from tests.signature.signing import fill_field, form_pdf

    filled = fill_field(sign_pdf(form_pdf("100000 EUR"), pki, level="B-T"), "1 EUR")
    sig = validate_file("offre.pdf", filled, ValidationPolicy(trust_anchors=(pki.root_der,))).signatures[0]
    assert [(m.kind, m.allowed) for m in sig.modifications] == [("form_filling", True)]
    assert "pdf.form_filled_after_signing" in sig.warnings
