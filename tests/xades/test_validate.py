"""XAdES validation against a real test PKI: CRLs and the RFC 3161 TSA served over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SignatureReport, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import NOW, Identity, LoopbackPKI
from tests.xades.signing import (
    NS,
    ChainReferencingSigner,
    add_signature_timestamp,
    sign_detached,
    sign_enveloped,
    sign_enveloping,
)

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% offre technique du lot 1\n%%EOF\n"
OTHER_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% offre technique du lot 2\n%%EOF\n"


def detached_xml(pki: LoopbackPKI, who: Identity, tsa: str | None = None, name: str = "offre.pdf") -> bytes:
    signature = sign_detached({name: PDF}, who)
    if tsa is not None:
        add_signature_timestamp(signature, f"{pki.base}{tsa}")
    return bytes(etree.tostring(signature, xml_declaration=True, encoding="UTF-8"))


def only(reports: list[SignatureReport]) -> SignatureReport:
    assert len(reports) == 1, reports
    return reports[0]


def test_xades_bes_detached_over_pdf_passes(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    pki.requests.clear()
    started = datetime.now(UTC)
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.signer), policy, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_B
    assert report.signer is not None and report.signer.common_name == "Alice Martin"
    # B-B, no proof of existence: the best signature time is the validation time (EN 319 102-1 §5.6.2.1)
    assert report.signing_time is not None and report.best_signature_time is not None
    assert started <= report.best_signature_time <= datetime.now(UTC)
    # what was signed: the PDF by name and digest, plus the XAdES signed properties
    assert f"file:offre.pdf sha256={hashlib.sha256(PDF).hexdigest()}" in report.signed_data
    assert any(s.startswith("signed-properties:") for s in report.signed_data)
    assert report.french_rule is not None and report.french_rule.bottom_line
    assert report.french_rule.certificate_category is RuleOutcome.NOT_CHECKED
    assert "GET /root.crl" in pki.requests  # revocation really fetched online


def test_xades_t_detached_over_pdf_passes(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    pki.requests.clear()
    data = detached_xml(pki, pki.signer, tsa="/tsa")
    assert "POST /tsa" in pki.requests  # the token came from a real RFC 3161 request over HTTP
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_T
    assert len(report.timestamps) == 1 and report.timestamps[0].valid
    assert report.timestamps[0].tsa is not None and "Test TSA" in report.timestamps[0].tsa
    assert report.best_signature_time == report.timestamps[0].time
    assert report.to_json()["level"] == "B-T"


def test_enveloped_valid_and_tampered(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = etree.fromstring(b"<bid><lot n='1'>42 000 EUR</lot></bid>")
    signed = bytes(etree.tostring(sign_enveloped(document, pki.signer)))
    report = only(validate_xades("bid.xml", signed, policy, {}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(s.startswith("document:(whole document) <bid>") for s in report.signed_data)

    tampered = signed.replace(b"42 000 EUR", b"24 000 EUR")
    report = only(validate_xades("bid.xml", tampered, policy, {}))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert report.french_rule is not None and "integrity" in report.french_rule.failed


def test_enveloping_valid(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    signed = bytes(etree.tostring(sign_enveloping(etree.fromstring(b"<dume>ok</dume>"), pki.signer)))
    report = only(validate_xades("dume.xml", signed, policy, {}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(s.startswith("element:#object <Object>") for s in report.signed_data)


def test_signature_value_tampered_is_crypto_failure(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    root = etree.fromstring(detached_xml(pki, pki.signer))
    value = root.find("ds:SignatureValue", NS)
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    report = only(validate_xades("offre.xml", etree.tostring(root), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE)


def test_detached_over_the_wrong_file(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    data = detached_xml(pki, pki.signer)
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": OTHER_PDF}))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)

    report = only(validate_xades("offre.xml", data, policy, {"annexe.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)


def test_detached_found_by_base_name_and_remote_uri_never_fetched(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    data = detached_xml(pki, pki.signer)
    report = only(validate_xades("offre.xml", data, policy, {"lot1/offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.signed_data[0].startswith("file:lot1/offre.pdf ")

    pki.requests.clear()
    remote = detached_xml(pki, pki.signer, name=f"{pki.base}/offre.pdf")
    report = only(validate_xades("offre.xml", remote, policy, {"offre.pdf": PDF}))
    assert report.subindication is SubIndication.SIGNED_DATA_NOT_FOUND
    assert "GET /offre.pdf" not in pki.requests


def test_untrusted_root(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.untrusted), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert report.french_rule is not None and not report.french_rule.bottom_line

    no_anchor = ValidationPolicy(offline=True)  # the OS trust store is never a fallback
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.signer), no_anchor, {"offre.pdf": PDF}))
    assert report.subindication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_expired_signer(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # No proof of existence: EN 319 102-1 gives INDETERMINATE; the signer's own claim (now) is after expiry.
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.expired), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)
    assert report.french_rule is not None
    assert report.french_rule.certificate_valid_at_signing_time is RuleOutcome.FAILED

    # A timestamp after expiry is no proof the signature was made after it (only that it existed then):
    # INDETERMINATE/OUT_OF_BOUNDS_NO_POE, as for PAdES and CAdES; the French rule fails.
    data = detached_xml(pki, pki.expired, tsa="/tsa")
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE)
    assert report.french_rule is not None and "certificate_valid_at_signing_time" in report.french_rule.failed

    # A timestamp from before the expiry (the TSA's clock two days ago): the signature stands.
    data = detached_xml(pki, pki.expired, tsa="/tsa-past")
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(w.startswith("certificate.expired_after_signing") for w in report.warnings)


def test_revoked_signer(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # no proof of existence (XAdES-BES), only the signer's claim: REVOKED_NO_POE (EN 319 102-1), French rule failed
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.revoked), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)
    assert report.french_rule is not None and "certificate_valid_at_signing_time" in report.french_rule.failed

    # revoked yesterday, timestamped two days ago: revoked after signing, with a proof of existence before
    data = detached_xml(pki, pki.revoked, tsa="/tsa-past")
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.best_signature_time is not None and report.best_signature_time < pki.revoked_at

    # offline: only the revocation data we are given counts
    offline = dataclasses.replace(policy, offline=True, extra_crls=(pki.crl,))
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.revoked), offline, {"offre.pdf": PDF}))
    assert report.subindication is SubIndication.REVOKED_NO_POE


def test_offline_without_revocation_data_is_documented(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    pki.requests.clear()
    offline = dataclasses.replace(policy, offline=True)
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.signer), offline, {"offre.pdf": PDF}))
    # as for PAdES and CAdES: a status nobody checked never passes
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    assert any(w.startswith("signature.offline_no_revocation") for w in report.warnings)
    assert "GET /root.crl" not in pki.requests


def test_tampered_signature_timestamp_is_not_passed(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # a genuine token from the trusted TSA, but over other bytes than this SignatureValue
    signature = sign_detached({"offre.pdf": PDF}, pki.signer)
    add_signature_timestamp(signature, f"{pki.base}/tsa", imprint_of=b"some other signature")
    started = datetime.now(UTC)  # after the token was issued
    report = only(validate_xades("offre.xml", etree.tostring(signature), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    # the token proves nothing: B-B, and the best signature time is the validation time, not the token's
    assert report.level is Level.B_B and report.best_signature_time is not None
    assert report.best_signature_time >= started
    assert any("message imprint" in e for e in report.errors)

    # a token whose bytes were altered
    root = etree.fromstring(detached_xml(pki, pki.signer, tsa="/tsa"))
    token = root.find(".//xades:EncapsulatedTimeStamp", NS)
    raw = bytearray(base64.b64decode(token.text))
    raw[len(raw) // 2] ^= 0xFF
    token.text = base64.b64encode(bytes(raw)).decode()
    report = only(validate_xades("offre.xml", etree.tostring(root), policy, {"offre.pdf": PDF}))
    assert report.indication is not Indication.TOTAL_PASSED
    assert any(e.startswith("signature timestamp:") for e in report.errors)


def test_key_info_certificate_swapped(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    root = etree.fromstring(detached_xml(pki, pki.signer))
    cert = root.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    cert.text = base64.b64encode(pki.revoked.der).decode()
    report = only(validate_xades("offre.xml", etree.tostring(root), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )


def test_duplicate_id_injected_into_a_valid_signature(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = etree.fromstring(b"<bid><lot Id='lot1'>42 000 EUR</lot></bid>")
    root = sign_enveloped(document, pki.signer)
    etree.SubElement(root, "lot", Id="lot1").text = "1 EUR"
    report = only(validate_xades("bid.xml", etree.tostring(root), policy, {}))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


def test_callable_from_inside_an_event_loop(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    data = detached_xml(pki, pki.signer)

    async def pipeline_stage() -> list[SignatureReport]:
        return validate_xades("offre.xml", data, policy, {"offre.pdf": PDF})

    assert only(asyncio.run(pipeline_stage())).indication is Indication.TOTAL_PASSED


def test_revocation_source_down_is_try_later(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    data = detached_xml(pki, pki.unreachable)
    report = only(validate_xades("offre.xml", data, policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    assert report.french_rule is not None
    assert report.french_rule.certificate_valid_at_signing_time is RuleOutcome.NOT_CHECKED


def test_deposit_proof_of_existence_counts(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # An expired signer's BES has no proof of existence of its own; the deposit timestamp of the signature
    # file (two days ago, before the expiry) is one.
    data = detached_xml(pki, pki.expired)
    deposit = (hashlib.sha256(data).hexdigest(), NOW - timedelta(days=2))
    with_deposit = dataclasses.replace(policy, proofs_of_existence=(deposit,))
    report = only(validate_xades("offre.xml", data, with_deposit, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.best_signature_time == deposit[1] and report.level is Level.B_B


def test_several_signatures_in_one_file_each_judged(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # A namespace-free container: the signatures were made with inclusive C14N outside any container, and a
    # namespace declared on the container would (rightly) change their canonical SignedInfo.
    container = etree.Element("signatures")
    container.append(sign_detached({"offre.pdf": PDF}, pki.signer))
    container.append(sign_detached({"annexe.pdf": OTHER_PDF}, pki.signer))
    files = {"offre.pdf": PDF, "annexe.pdf": OTHER_PDF}
    reports = validate_xades("signatures.xml", etree.tostring(container), policy, files)
    assert [r.indication for r in reports] == [Indication.TOTAL_PASSED] * 2
    assert reports[1].signed_data[0].startswith("file:annexe.pdf ")

    files["annexe.pdf"] = PDF  # only the second signature's data changed
    reports = validate_xades("signatures.xml", etree.tostring(container), policy, files)
    assert [r.subindication for r in reports] == [None, SubIndication.HASH_FAILURE]


def test_unsupported_transform_is_not_mistaken_for_tampering(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    root = etree.fromstring(detached_xml(pki, pki.signer))
    reference = root.find("ds:SignedInfo/ds:Reference", NS)
    transforms = etree.SubElement(reference, f"{{{NS['ds']}}}Transforms")
    reference.insert(0, transforms)
    etree.SubElement(transforms, f"{{{NS['ds']}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116")
    report = only(validate_xades("offre.xml", etree.tostring(root), policy, {"offre.pdf": PDF}))
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.GENERIC)
    assert "unsupported Reference transforms" in report.errors[0]


def test_signing_certificate_may_also_name_issuers(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = etree.fromstring(b"<bid><lot>42 000 EUR</lot></bid>")
    signed = ChainReferencingSigner(pki.root.der).sign(document, key=pki.signer.key, cert=[pki.signer.cert])
    assert len(signed.findall(".//xades:SigningCertificateV2/xades:Cert", NS)) == 2
    report = only(validate_xades("bid.xml", etree.tostring(signed), policy, {}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors


def test_doctype_text_inside_signed_content_is_not_a_doctype(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = etree.fromstring(b"<bid><html>&lt;!DOCTYPE html&gt;&lt;p&gt;offre&lt;/p&gt;</html></bid>")
    signed = bytes(etree.tostring(sign_enveloped(document, pki.signer)))
    # C14N turns a CDATA section into its escaped text, so writing the text as CDATA keeps the digest
    escaped, cdata = b"&lt;!DOCTYPE html&gt;&lt;p&gt;offre&lt;/p&gt;", b"<![CDATA[<!DOCTYPE html><p>offre</p>]]>"
    signed = signed.replace(escaped, cdata)
    assert b"<!DOCTYPE html>" in signed
    report = only(validate_xades("bid.xml", signed, policy, {}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors


def test_validation_at_a_past_time_uses_todays_revocation_data(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # The CRL was issued an hour ago; validating as of two hours ago must still be able to use it.
    as_of = dataclasses.replace(policy, at=NOW - timedelta(hours=2))
    report = only(validate_xades("offre.xml", detached_xml(pki, pki.signer), as_of, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors

    # and a certificate is judged against its revocation date: revoked yesterday, not two days ago
    data = detached_xml(pki, pki.revoked)
    report = only(validate_xades("offre.xml", data, as_of, {"offre.pdf": PDF}))
    assert report.subindication is SubIndication.REVOKED_NO_POE
    two_days_ago = dataclasses.replace(policy, at=NOW - timedelta(days=2))
    report = only(validate_xades("offre.xml", data, two_days_ago, {"offre.pdf": PDF}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors


def test_signing_certificate_given_out_of_band(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    root = etree.fromstring(detached_xml(pki, pki.signer))
    # Without X509Data the signer can only be identified from certificates the policy knows. (signxml signs
    # KeyInfo too, so removing it also breaks that reference: the point here is the identification.)
    for data in root.findall("ds:KeyInfo/ds:X509Data", NS):
        data.getparent().remove(data)
    without = etree.tostring(root)
    report = only(validate_xades("offre.xml", without, policy, {"offre.pdf": PDF}))
    assert report.subindication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND
    known = dataclasses.replace(policy, extra_certificates=(pki.signer.der,))
    report = only(validate_xades("offre.xml", without, known, {"offre.pdf": PDF}))
    assert report.signer is not None and report.signer.common_name == "Alice Martin"
    assert report.subindication is SubIndication.HASH_FAILURE  # the signed KeyInfo was altered, and it shows
