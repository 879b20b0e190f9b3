"""Qualification per TS 119 615 at the best signature time, and the French rule's category point
(issue 12, "Qualification" and "French rule")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bidproc.signature.report import (
    FrenchRuleCheck,
    Indication,
    Qualification,
    RuleOutcome,
    SignatureFormat,
    SignatureReport,
    Signer,
)
from bidproc.signature.trust.assess import TrustSettings, assess
from tests.trust.builder import NOW, Key, make_cert, qc_statements
from tests.trust.conftest import World

PASSED_RULE = FrenchRuleCheck(
    format=RuleOutcome.PASSED,
    certificate_valid_at_signing_time=RuleOutcome.PASSED,
    integrity=RuleOutcome.PASSED,
    signer_identity=RuleOutcome.PASSED,
)


def _report(leaf: Key, at: datetime | None = NOW, indication: Indication = Indication.TOTAL_PASSED) -> SignatureReport:
    signer = Signer(subject="CN=x", common_name="x", certificate_der=leaf.der)
    return SignatureReport(
        file="bid.pdf",
        format=SignatureFormat.PADES,
        indication=indication,
        signer=signer,
        best_signature_time=at,
        french_rule=PASSED_RULE,
    )


def _assess(world: World, leaf: Key, at: datetime | None = NOW, **kw: object) -> SignatureReport:
    trust = TrustSettings(lists=world.load(), equivalent_cas=tuple(kw.pop("equivalent", ())))  # type: ignore[arg-type]
    return assess(_report(leaf, at, **kw), trust, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ca", "qc", "expected"),
    [
        ("qca", qc_statements(sscd=True), Qualification.QESIG),  # QcCompliance + QcSSCD + esign, granted CA
        ("qca", qc_statements(sscd=True, qc_type=None), Qualification.QESIG),  # no QcType: esign by default
        ("qca", qc_statements(sscd=False), Qualification.ADESIG_QC),  # qualified, key not on a QSCD
        ("noqscd_ca", qc_statements(sscd=True), Qualification.ADESIG_QC),  # list says QCNoQSCD over the cert
        ("qca", None, Qualification.ADESIG),  # no QC statements at all
        ("qca", qc_statements(compliance=False, sscd=True), Qualification.ADESIG),  # QcSSCD alone qualifies nothing
        ("seal_ca", qc_statements(sscd=True, qc_type="qct_eseal"), Qualification.QESEAL),
        ("seal_ca", qc_statements(sscd=False, qc_type="qct_eseal"), Qualification.ADESEAL_QC),
    ],
)
def test_qualification_from_statements_and_list(
    world: World, ca: str, qc: bytes | None, expected: Qualification
) -> None:
    leaf = make_cert("Jean Dupont", issuer=getattr(world, ca), qc=qc)
    report = _assess(world, leaf)
    assert report.qualification is expected, report.qualification_details
    assert any("QC statements in the certificate" in d for d in report.qualification_details)
    assert any(expected.value in d for d in report.qualification_details)


def test_service_withdrawn_before_signing_time_is_not_qualified(world: World) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.withdrawn_ca, qc=qc_statements(sscd=True))
    # signed 10 days ago: the service was withdrawn 100 days ago
    after = _assess(world, leaf, NOW - timedelta(days=10))
    assert after.qualification is Qualification.ADESIG
    assert any("no granted qualified service" in d for d in after.qualification_details)
    assert any("Withdrawn CA service" in d for d in after.qualification_details)  # history shown
    # the same certificate used while the service was granted (from the list's history) is qualified
    before = _assess(world, leaf, NOW - timedelta(days=200))
    assert before.qualification is Qualification.QESIG


def test_service_granted_after_signing_time_is_not_qualified(world: World) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.late_ca, qc=qc_statements(sscd=True))
    assert _assess(world, leaf, NOW - timedelta(days=10)).qualification is Qualification.ADESIG
    assert _assess(world, leaf, NOW - timedelta(days=1)).qualification is Qualification.QESIG


def test_best_signature_time_not_claimed_time_decides(world: World) -> None:
    """Without a best signature time the validation time counts (a claimed signing time never does)."""
    leaf = make_cert("Jean Dupont", issuer=world.withdrawn_ca, qc=qc_statements(sscd=True))
    report = _report(leaf, at=None)
    report = SignatureReport(**{**report.__dict__, "signing_time": NOW - timedelta(days=500)})
    out = assess(report, TrustSettings(lists=world.load()), NOW)
    assert out.qualification is Qualification.ADESIG


@pytest.mark.parametrize("variant", ["same_name_other_key", "unlisted_ca", "self_signed_lookalike"])
def test_forged_issuer_is_not_qualified(world: World, variant: str) -> None:
    """A certificate naming a qualified CA as issuer, not signed by it, gets nothing from the list."""
    qc = qc_statements(sscd=True)
    if variant == "same_name_other_key":
        impostor = make_cert("Qualified CA", ca=True)  # same subject as the listed CA, another key
        leaf = make_cert("Mallory", issuer=impostor, qc=qc)
    elif variant == "unlisted_ca":
        leaf = make_cert("Mallory", issuer=make_cert("Other CA", ca=True), qc=qc)
    else:
        leaf = make_cert("Qualified CA", qc=qc)
    report = _assess(world, leaf)
    assert report.qualification is Qualification.ADESIG
    assert report.french_rule is not None and report.french_rule.certificate_category is RuleOutcome.FAILED


def test_intermediate_between_signer_and_listed_ca(world: World) -> None:
    interm = make_cert("Issuing CA", issuer=world.qca, ca=True)
    leaf = make_cert("Jean Dupont", issuer=interm, qc=qc_statements(sscd=True))
    trust = TrustSettings(lists=world.load())
    assert assess(_report(leaf), trust, NOW).qualification is Qualification.ADESIG  # chain unknown
    assert assess(_report(leaf), trust, NOW, (interm.der,)).qualification is Qualification.QESIG


@pytest.mark.parametrize("indication", [Indication.TOTAL_FAILED, Indication.INDETERMINATE])
def test_signature_verdict_bounds_qualification(world: World, indication: Indication) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=True))
    report = _assess(world, leaf, indication=indication)
    # the category belongs to the certificate: a failed signature fails the rule elsewhere, not here
    assert report.french_rule is not None and report.french_rule.certificate_category is RuleOutcome.PASSED
    if indication is Indication.TOTAL_FAILED:
        assert report.qualification is Qualification.NA
    else:
        assert report.qualification is Qualification.QESIG
        assert any("INDETERMINATE" in d for d in report.qualification_details)


def test_french_category_qualified_passes_and_rule_is_compliant(world: World) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=False))  # AdESig-QC suffices
    rule = _assess(world, leaf).french_rule
    assert rule is not None and rule.certificate_category is RuleOutcome.PASSED
    assert rule.compliant and rule.failed == ()


@pytest.mark.parametrize(
    ("ca", "qc", "phrase"),
    [
        ("qca", None, "neither qualified"),
        ("seal_ca", qc_statements(sscd=True, qc_type="qct_eseal"), "seal"),
        ("withdrawn_ca", qc_statements(sscd=True), "neither qualified"),
    ],
)
def test_french_category_fails_in_words(world: World, ca: str, qc: bytes | None, phrase: str) -> None:
    leaf = make_cert("Jean Dupont", issuer=getattr(world, ca), qc=qc)
    rule = _assess(world, leaf, NOW - timedelta(days=10)).french_rule
    assert rule is not None and rule.certificate_category is RuleOutcome.FAILED
    assert not rule.compliant and "certificate_category" in rule.failed
    assert any(d.startswith("certificate_category:") and phrase in d for d in rule.details)


def test_equivalent_authority_passes_the_category_without_lists(world: World) -> None:
    equivalent = make_cert("RGS** CA (accepted equivalent)", ca=True)
    leaf = make_cert("Jean Dupont", issuer=equivalent)
    out = assess(_report(leaf), TrustSettings(lists=None, equivalent_cas=(equivalent.der,)), NOW)
    assert out.french_rule is not None and out.french_rule.certificate_category is RuleOutcome.PASSED
    assert out.french_rule.compliant and out.qualification is Qualification.NA
    # a lookalike of the equivalent CA (same name, other key) does not pass
    lookalike = make_cert("RGS** CA (accepted equivalent)", ca=True)
    forged = assess(_report(make_cert("M", issuer=lookalike)), TrustSettings(equivalent_cas=(equivalent.der,)), NOW)
    assert forged.french_rule is not None and forged.french_rule.certificate_category is RuleOutcome.NOT_CHECKED
    assert not forged.french_rule.compliant


def test_without_lists_category_not_checked_and_not_compliant(world: World) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=True))
    out = assess(_report(leaf), TrustSettings(), NOW)
    assert out.qualification is Qualification.NA
    assert out.french_rule is not None and out.french_rule.certificate_category is RuleOutcome.NOT_CHECKED
    assert out.french_rule.bottom_line and not out.french_rule.compliant


def test_json_carries_qualification_and_compliance_not_certificates(world: World) -> None:
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=True))
    doc = _assess(world, leaf).to_json()
    assert doc["qualification"] == "QESig" and doc["qualification_details"]
    assert doc["french_rule"]["compliant"] is True and "certificate_der" not in doc["signer"]


def test_timestamp_qualified_only_when_valid_and_listed(world: World) -> None:
    from dataclasses import replace

    from bidproc.signature.report import TimestampInfo
    from tests.trust.builder import QTST, Service, lotl, national_list, sign_list

    tsa, other = make_cert("Qualified TSA"), make_cert("Other TSA")
    fr = sign_list(national_list("FR", [Service(tsa, "QTST", service_type=QTST, for_type=None)]), world.tlso)
    lo = sign_list(lotl([("FR", "https://tl.example/fr.xml", [world.tlso])]), world.lotl_signer)
    from asn1crypto import x509 as asn1_x509

    from bidproc.signature.trust.documents import Document
    from bidproc.signature.trust.lists import load

    lists = load(Document("l", lo), [Document("f", fr)], NOW, [asn1_x509.Certificate.load(world.lotl_signer.der)])
    leaf = make_cert("Jean Dupont", issuer=world.qca, qc=qc_statements(sscd=True))
    stamps = (
        TimestampInfo(kind="signature", time=NOW, valid=True, tsa_certificate=tsa.der),
        TimestampInfo(kind="signature", time=NOW, valid=False, tsa_certificate=tsa.der),  # token did not verify
        TimestampInfo(kind="archive", time=NOW, valid=True, tsa_certificate=other.der),  # TSA not listed
        TimestampInfo(kind="deposit", time=NOW, valid=True),  # no TSA certificate reported
    )
    out = assess(replace(_report(leaf), timestamps=stamps), TrustSettings(lists=lists), NOW)
    assert [t.qualified for t in out.timestamps] == [True, False, False, None]
