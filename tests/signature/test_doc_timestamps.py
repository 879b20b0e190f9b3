"""PAdES document timestamps offline (issue 8, class 4) and the B-B best signature time (class 9).

A document timestamp is the archive timestamp of every signature in an earlier revision (EN 319 102-1
§5.6): it is reported in their ``timestamps`` (kind "archive", valid from its own validation with the
DSS as local knowledge), never as a signature of its own, and the level says B-LTA only when one of
them validated. One that protects no signature keeps an entry of its own, with no signer.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, SignatureReport, SubIndication
from bidproc.signature.validate import content_sha256, validate_file
from tests.pki import TestPKI
from tests.signature.doc_timestamps import (
    add_doc_timestamp,
    doc_timestamps,
    other_tsa,
    renew_archive,
    tamper_doc_timestamp,
)
from tests.signature.signing import fetch_crl, fetch_ocsp, make_pdf, sign_cms, sign_pdf

NOT_VALIDATED = "pades.archive_timestamp_not_validated"


def offline(pki: TestPKI, data: bytes, **policy: object) -> list[SignatureReport]:
    report = validate_file("bid.pdf", data, ValidationPolicy(trust_anchors=(pki.root_der,), offline=True, **policy))  # type: ignore[arg-type]
    assert not report.problems
    return list(report.signatures)


def archive(sig: SignatureReport) -> list[bool]:
    return [t.valid for t in sig.timestamps if t.kind == "archive"]


def warned(sig: SignatureReport, code: str) -> list[str]:
    return [w for w in sig.warnings if w.startswith(code)]


def test_lta_offline_with_the_tsa_in_the_dss(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """pyhanko's B-LTA: the DSS after the document timestamp holds its TSA's revocation data."""
    (sig,) = offline(pki, signed["B-LTA"])  # the document timestamp is no signature of its own
    assert (sig.indication, sig.subindication, sig.level) == (Indication.TOTAL_PASSED, None, Level.B_LTA)
    (stamp,) = [t for t in sig.timestamps if t.kind == "archive"]
    assert stamp.valid and stamp.tsa is not None and "TSA" in stamp.tsa
    assert stamp.time >= next(t.time for t in sig.timestamps if t.kind == "signature")
    assert not warned(sig, NOT_VALIDATED) and not warned(sig, "signature.offline_no_revocation")


def test_doc_timestamp_on_b_lt_uses_the_signature_dss(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """No DSS update after the document timestamp: the signature's DSS already covers the TSA (same root)."""
    (sig,) = offline(pki, add_doc_timestamp(signed["B-LT"], pki, with_dss=False))
    assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LTA, [True])


@pytest.mark.parametrize("issuer", ["root", "rogue-root"])
def test_archive_timestamp_the_dss_cannot_validate_is_not_b_lta(
    pki: TestPKI, signed: dict[str, bytes], issuer: str
) -> None:
    """The TSA's revocation data is in no DSS (root), or its chain is not trusted (rogue-root): the
    archive timestamp is listed as not validated, with the reason, and the level is B-LT."""
    data = add_doc_timestamp(signed["B-LT"], pki, tsa=other_tsa(pki, issuer), with_dss=False)
    (sig,) = offline(pki, data)
    assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LT, [False])
    reasons = warned(sig, NOT_VALIDATED)
    assert len(reasons) == 2 and "level B-LT" in reasons[1]
    expected = "TRY_LATER" if issuer == "root" else "NO_CERTIFICATE_CHAIN_FOUND"
    assert expected in reasons[0], reasons
    # online, a dead OCSP responder is no better: still not B-LTA
    if issuer == "root":
        report = validate_file("bid.pdf", data, ValidationPolicy(trust_anchors=(pki.root_der,)))
        assert [(s.level, archive(s)) for s in report.signatures] == [(Level.B_LT, [False])]


@pytest.mark.parametrize("what", ["signature", "imprint"])
def test_tampered_doc_timestamp_is_not_an_archive_timestamp(pki: TestPKI, signed: dict[str, bytes], what: str) -> None:
    data = tamper_doc_timestamp(signed["B-LTA"], what=what)
    (sig,) = offline(pki, data)
    assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LT, [False])
    assert "TOTAL_FAILED" in warned(sig, NOT_VALIDATED)[0]
    assert all(m.allowed for m in sig.modifications)  # nothing a reader sees changed


def test_renewed_archive_timestamps_are_both_listed(pki: TestPKI, signed: dict[str, bytes]) -> None:
    renewed = renew_archive(signed["B-LTA"], pki)
    assert len(doc_timestamps(renewed)) == 2
    (sig,) = offline(pki, renewed)
    assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LTA, [True, True])
    first, second = (t for t in sig.timestamps if t.kind == "archive")
    assert first.time <= second.time and first.detail != second.detail
    assert not warned(sig, NOT_VALIDATED)


def test_renewal_proves_a_timestamp_whose_tsa_has_expired(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """Three days on, the first document timestamp's TSA certificate (two days) has expired. Renewed,
    the later timestamp's proof of existence validates it in the past (the evidence-record chain); not
    renewed, nothing can: it is listed as not validated and the level is B-LT."""
    one = add_doc_timestamp(signed["B-LT"], pki, tsa=other_tsa(pki, days=2, root_crl=True))
    renewed = renew_archive(one, pki)
    later = pki.t0 + timedelta(days=3, hours=1)
    fresh = dict(
        at=later,
        extra_crls=(fetch_crl(pki, "root", later), fetch_crl(pki, "interm", later)),
        extra_ocsps=(fetch_ocsp(pki, "signer", later),),
    )
    (alone,) = offline(pki, one, **fresh)
    assert (alone.indication, alone.level, archive(alone)) == (Indication.TOTAL_PASSED, Level.B_LT, [False])
    assert "OUT_OF_BOUNDS_NO_POE" in warned(alone, NOT_VALIDATED)[0]
    (sig,) = offline(pki, renewed, **fresh)
    assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LTA, [True, True])
    assert not warned(sig, NOT_VALIDATED)


def test_one_archive_timestamp_of_two_failing_is_named_but_b_lta_holds(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """The renewal is tampered with (the first still validates), or the first was by an unknown TSA
    (the renewal validates): B-LTA on the one that held, a warning naming the other."""
    renewal_broken = tamper_doc_timestamp(renew_archive(signed["B-LTA"], pki), index=-1)
    rogue = add_doc_timestamp(signed["B-LT"], pki, tsa=other_tsa(pki, "rogue-root"), with_dss=False)
    rogue_first = add_doc_timestamp(rogue, pki)  # pyhanko's renewal refuses to renew what it cannot validate
    for data, expected in ((renewal_broken, [True, False]), (rogue_first, [False, True])):
        (sig,) = offline(pki, data)
        assert (sig.indication, sig.level, archive(sig)) == (Indication.TOTAL_PASSED, Level.B_LTA, expected), (
            sig.subindication,
            sig.errors,
            sig.warnings,
        )
        (reason,) = warned(sig, NOT_VALIDATED)
        failed = next(t for t in sig.timestamps if t.kind == "archive" and not t.valid)
        assert failed.detail is not None and failed.detail in reason


def test_two_signatures_share_the_archive_timestamp(pki: TestPKI, signed: dict[str, bytes]) -> None:
    data = add_doc_timestamp(sign_pdf(signed["B-LT"], pki, level="B-LT", field="Signature2"), pki)
    reports = offline(pki, data)
    assert [(s.signature_id, s.level, archive(s)) for s in reports] == [
        ("Signature1", Level.B_LTA, [True]),
        ("Signature2", Level.B_LTA, [True]),
    ]


def test_document_timestamp_protecting_no_signature(pki: TestPKI) -> None:
    """Only timestamped: one entry, the timestamp's own verdict, no signer, pdf.timestamp_only. A
    timestamp before the signature protects nothing of it: it stays on its own, the signature is B-LT."""
    stamped = add_doc_timestamp(make_pdf(), pki)
    (only,) = offline(pki, stamped)
    assert (only.indication, only.level, only.signer) == (Indication.TOTAL_PASSED, None, None)
    assert warned(only, "pdf.timestamp_only") and [t.kind for t in only.timestamps] == ["document"]
    assert only.french_rule is not None and "signer_identity" in only.french_rule.failed
    bare = add_doc_timestamp(make_pdf(), pki, tsa=other_tsa(pki), with_dss=False)
    (unvalidated,) = offline(pki, bare)
    assert (unvalidated.indication, unvalidated.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    first_stamped = offline(pki, sign_pdf(stamped, pki, level="B-LT"))
    assert [(r.signature_id, r.level, archive(r)) for r in first_stamped][1:] == [("Signature1", Level.B_LT, [])]
    assert warned(first_stamped[0], "pdf.timestamp_only")


def test_b_b_best_signature_time_is_the_validation_time(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """EN 319 102-1 §5.3: with no proof of existence, the best signature time is the validation time;
    a proof of existence given by the caller (the deposit timestamp) replaces it. PAdES and CAdES agree."""
    at = pki.t0 + timedelta(minutes=30)
    deposit = at - timedelta(minutes=5)
    offer = b"Offre de prix"
    cades = sign_cms(offer, pki, detached=True, timestamp=False)
    # the deposit receipt holds each file's SHA-256: the PDF's, and for a detached .p7s the data file's
    for name, data, signed_file in (("bid.pdf", signed["B-B"], signed["B-B"]), ("bid.p7s", cades, offer)):
        policy = ValidationPolicy(trust_anchors=(pki.root_der,), at=at)
        plain = validate_file(name, data, policy, {"offre.txt": offer}).signatures[0]
        assert (plain.level, plain.best_signature_time) == (Level.B_B, at), name
        assert plain.indication is Indication.TOTAL_PASSED, (name, plain.subindication, plain.errors)
        poe = ((content_sha256(signed_file), deposit),)
        proven = validate_file(
            name,
            data,
            ValidationPolicy(trust_anchors=(pki.root_der,), at=at, proofs_of_existence=poe),
            {"offre.txt": offer},
        ).signatures[0]
        assert proven.best_signature_time == deposit, name
        assert proven.indication is Indication.TOTAL_PASSED, (name, proven.subindication)
