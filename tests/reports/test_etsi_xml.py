"""The ETSI TS 119 102-2 XML report: schema-valid for every kind of signature and outcome, and true."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

import pytest
from lxml import etree

from bidproc.signature.report import Indication, Qualification, Signer
from bidproc.signature.reports import Subject
from bidproc.signature.reports.etsi_xml import render_xml
from bidproc.signature.validate import enveloped_content_of
from tests.reports.samples import Sample
from tests.reports.schema import vr_schema

NS = {
    "vr": "http://uri.etsi.org/19102/v1.4.1#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "bp": "urn:bidproc:validation-report:1",
}
MAIN = {
    Indication.TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    Indication.TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
    Indication.INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
}


def valid_xml(subject: Subject) -> etree._Element:
    doc = etree.fromstring(render_xml(subject))
    schema = vr_schema()
    assert schema.validate(doc), schema.error_log
    return doc


def test_every_sample_validates_against_the_schema_and_keeps_its_verdict(subjects: dict[str, Subject]) -> None:
    seen = set()
    for name, subject in subjects.items():
        doc = valid_xml(subject)
        reports = doc.findall("vr:SignatureValidationReport", NS)
        sigs = subject.report.signatures
        assert len(reports) == max(1, len(sigs)), name
        for sig, rep in zip(sigs, reports, strict=False):
            assert rep.findtext("vr:SignatureValidationStatus/vr:MainIndication", namespaces=NS) == MAIN[sig.indication]
            subs = rep.findall("vr:SignatureValidationStatus/vr:SubIndication", NS)
            expected = [f"urn:etsi:019102:subindication:{sig.subindication.value}"] if sig.subindication else []
            assert [s.text for s in subs] == expected, name
            assert rep.findtext("vr:OtherInformation/bp:Format", namespaces=NS) == sig.format.value
            seen.add((sig.format.value, sig.indication))
    # the set really covers passed, failed and indeterminate, in all three formats
    for fmt in ("PAdES", "CAdES", "XAdES"):
        assert (fmt, Indication.TOTAL_PASSED) in seen, fmt
        assert (fmt, Indication.INDETERMINATE) in seen or (fmt, Indication.TOTAL_FAILED) in seen, fmt
    assert {i for _, i in seen} == set(Indication)


def test_unsigned_file_gives_a_valid_failed_report(subjects: dict[str, Subject]) -> None:
    doc = valid_xml(subjects["unsigned"])
    assert doc.findtext(".//vr:MainIndication", namespaces=NS) == MAIN[Indication.TOTAL_FAILED]
    assert "no signature found" in doc.findtext(".//bp:FileProblem", namespaces=NS)


def test_modification_after_signing_is_in_the_report(subjects: dict[str, Subject]) -> None:
    subject = subjects["pades-modified"]
    sig = subject.report.signatures[0]
    assert sig.indication is not Indication.TOTAL_PASSED
    doc = valid_xml(subject)
    mods = doc.findall(".//bp:Modification", NS)
    assert mods and any(m.get("allowed") == "false" for m in mods)
    assert doc.findtext(".//bp:FrenchRule/bp:Point[@name='integrity']", namespaces=NS) is not None
    assert doc.find(".//bp:FrenchRule/bp:Point[@name='integrity']", NS).get("outcome") == "failed"
    assert doc.find(".//bp:FrenchRule", NS).get("compliant") == "false"
    # a passed signature whose certificate category was not checked is not "compliant" either
    ok = valid_xml(subjects["pades-B-T"]).find(".//bp:FrenchRule", NS)
    assert ok.get("compliant") == "false"
    assert ok.find("bp:Point[@name='certificate_category']", NS).get("outcome") == "not_checked"


def test_times_signer_and_timestamps(subjects: dict[str, Subject]) -> None:
    subject = subjects["pades-B-LT"]
    sig = subject.report.signatures[0]
    doc = valid_xml(subject)
    rep = doc.find("vr:SignatureValidationReport", NS)
    assert rep.findtext("vr:ValidationTimeInfo/vr:BestSignatureTime/vr:TypeOfProof", namespaces=NS) == (
        "urn:etsi:019102:poetype:validation"
    )
    assert rep.findtext("vr:SignatureAttributes/vr:SignatureTimeStamp/vr:TimeStampValue", namespaces=NS)
    assert rep.findtext("vr:SignatureValidationProcess/vr:SignatureValidationProcessID", namespaces=NS) == (
        "urn:etsi:019102:validationprocess:LTVM"
    )
    assert sig.signer is not None
    assert rep.findtext("vr:SignerInformation/vr:Signer", namespaces=NS) == sig.signer.subject
    ref = rep.find("vr:SignerInformation/vr:SignerCertificate", NS).get("VOReference")
    vo = doc.find(f"vr:SignatureValidationObjects/vr:ValidationObject[@id='{ref}']", NS)
    assert vo.findtext("vr:ObjectType", namespaces=NS) == "urn:etsi:019102:validationObject:certificate"
    digest = vo.findtext(".//ds:DigestValue", namespaces=NS)
    assert base64.b64decode(digest).hex() == sig.signer.certificate_sha256


@pytest.mark.parametrize("sample", ["cades-detached", "xades-B-T"])
def test_signed_data_digest_is_the_detached_file(subjects: dict[str, Subject], sample: str) -> None:
    subject = subjects[sample]
    doc = valid_xml(subject)
    (data,) = subject.detached
    values = [base64.b64decode(v.text).hex() for v in doc.findall(".//vr:SignersDocument//ds:DigestValue", NS)]
    reps = doc.find(".//vr:SignersDocument/vr:SignersDocumentRepresentation", NS).get("VOReference").split()
    represented = [
        base64.b64decode(doc.findtext(f".//vr:ValidationObject[@id='{r}']//ds:DigestValue", namespaces=NS)).hex()
        for r in reps
    ]
    assert data.sha256 in represented
    if sample == "cades-detached":  # one signed object: it is the SignersDocument digest itself
        assert values == [data.sha256]


@pytest.mark.parametrize("qualification", [Qualification.QESIG, Qualification.ADESEAL_QC])
def test_qualification_when_known(subjects: dict[str, Subject], qualification: Qualification) -> None:
    subject = subjects["xades-B-B"]
    sig = replace(subject.report.signatures[0], qualification=qualification)
    subject = replace(subject, report=replace(subject.report, signatures=(sig,)))
    doc = valid_xml(subject)
    assert doc.findtext(".//vr:SignatureQuality/vr:SignatureQualityInformation", namespaces=NS).endswith(
        ":" + qualification.value
    )


@pytest.mark.parametrize("hostile", ["Eve\x00\x01 <x/>", "]]><vr:MainIndication>", "A & B \udc80"])
def test_hostile_names_stay_text_and_valid(subjects: dict[str, Subject], hostile: str) -> None:
    subject = subjects["pades-B-T"]
    sig = subject.report.signatures[0]
    assert sig.signer is not None
    sig = replace(sig, file=hostile, signer=replace(sig.signer, subject=hostile), signature_id=hostile)
    subject = replace(subject, report=replace(subject.report, subject=hostile, signatures=(sig,)))
    doc = valid_xml(subject)
    assert len(doc.findall(".//vr:MainIndication", NS)) == 1  # no element smuggled in
    written = doc.findtext(".//vr:Signer", namespaces=NS)
    # the name comes back as text, with only the characters XML cannot carry replaced
    expected = "".join(c if c.isprintable() or c in "\t\n\r" else "\ufffd" for c in hostile)
    assert written == expected.replace("\udc80", "\ufffd")


def test_schema_check_is_real() -> None:
    """The schema loaded offline does reject a report without its mandatory status."""
    bad = etree.fromstring(
        b'<vr:ValidationReport xmlns:vr="http://uri.etsi.org/19102/v1.4.1#"><vr:SignatureValidationReport/>'
        b"</vr:ValidationReport>"
    )
    assert not vr_schema().validate(bad)


def test_sample_outcomes_are_what_the_set_claims(subjects: dict[str, Subject]) -> None:
    def ind(name: str) -> Indication:
        return subjects[name].report.signatures[0].indication

    passed = ("pades-B-B", "pades-B-T", "pades-B-LT", "pades-B-LTA", "cades-detached", "cades-enveloping", "xades-B-T")
    for name in passed:
        assert ind(name) is Indication.TOTAL_PASSED, (name, subjects[name].report.signatures[0])
    for name in ("pades-modified", "pades-hash-failure", "pades-revoked", "cades-wrong-data", "xades-revoked"):
        assert ind(name) is Indication.TOTAL_FAILED, name
    for name in ("pades-untrusted", "pades-no-anchor", "xades-untrusted"):
        assert ind(name) is Indication.INDETERMINATE, name


def test_enveloping_cades_reports_the_digest_of_the_enveloped_document(
    subjects: dict[str, Subject], samples: dict[str, Sample]
) -> None:
    subject = subjects["cades-enveloping"]
    content = enveloped_content_of(samples["cades-enveloping"].data)
    assert content is not None and subject.enveloped is not None
    assert subject.report.signatures[0].indication is Indication.TOTAL_PASSED
    doc = valid_xml(subject)
    digest = base64.b64decode(doc.findtext(".//vr:SignersDocument/vr:DigestAlgAndValue/ds:DigestValue", namespaces=NS))
    assert digest == hashlib.sha256(content).digest()
    assert digest.hex() != subject.document.sha256  # the document signed, not the .p7m around it


@dataclass(frozen=True)
class _SignerWithCert(Signer):
    certificate_der: bytes | None = None  # as the trusted-lists work adds it


def test_signer_certificate_itself_when_validation_hands_it_over(
    subjects: dict[str, Subject], samples: dict[str, Sample]
) -> None:
    from asn1crypto import cms

    subject = subjects["cades-detached"]
    sig = subject.report.signatures[0]
    assert sig.signer is not None
    signed = cms.ContentInfo.load(samples["cades-detached"].data)["content"]
    der = next(
        c.chosen.dump()
        for c in signed["certificates"]
        if hashlib.sha256(c.chosen.dump()).hexdigest() == sig.signer.certificate_sha256
    )
    fields = {f: getattr(sig.signer, f) for f in sig.signer.__dataclass_fields__} | {"certificate_der": der}
    sig = replace(sig, signer=_SignerWithCert(**fields))
    doc = valid_xml(replace(subject, report=replace(subject.report, signatures=(sig,))))
    ref = doc.find(".//vr:SignerInformation/vr:SignerCertificate", NS).get("VOReference")
    chain = doc.find(".//vr:AssociatedValidationReportData/vr:CertificateChain/vr:SigningCertificate", NS)
    assert chain.get("VOReference") == ref
    vo = doc.find(f".//vr:ValidationObject[@id='{ref}']", NS)
    assert base64.b64decode(vo.findtext(".//vr:base64", namespaces=NS)) == der


def test_best_signature_time_from_the_deposit_is_a_provided_proof(subjects: dict[str, Subject]) -> None:
    from datetime import timedelta

    from bidproc.signature.report import TimestampInfo

    subject = subjects["pades-B-B"]
    sig = subject.report.signatures[0]
    deposit = subject.validation_time - timedelta(days=2)
    sig = replace(
        sig,
        best_signature_time=deposit,
        timestamps=(TimestampInfo(kind="deposit", time=deposit, valid=True, detail="receipt"),),
    )
    doc = valid_xml(replace(subject, report=replace(subject.report, signatures=(sig,))))
    poe = doc.find(".//vr:ValidationTimeInfo/vr:BestSignatureTime", NS)
    assert poe.findtext("vr:TypeOfProof", namespaces=NS) == "urn:etsi:019102:poetype:provided"
    assert poe.findtext("vr:POETime", namespaces=NS).startswith(deposit.strftime("%Y-%m-%dT%H:%M:%S"))
    # a deposit is a proof of existence, not a signature attribute
    assert doc.find(".//vr:SignatureAttributes/vr:SignatureTimeStamp", NS) is None
