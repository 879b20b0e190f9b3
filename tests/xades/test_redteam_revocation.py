"""Red team: revocation data the signature carries must never hide a revocation the CA publishes.

A revoked signer keeps the CRL its CA issued *before* the revocation (genuine, signed by the CA, its
nextUpdate still ahead: CAs publish daily lists valid for a week) and embeds it in the signature's
RevocationValues (or TimeStampValidationData). pyhanko-certvalidator answers from the CRLs it already holds
before fetching anything, so online validation must not let the signature choose the revocation data
that decides its own status: the list the CA publishes now shows the revocation.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.ltv import XADES141, fetch_crl
from tests.xades.pki import NOW, Identity, LoopbackPKI
from tests.xades.signing import NS, XADES, add_signature_timestamp, sign_detached

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% offre de prix\n%%EOF\n"
FILES = {"offre.pdf": PDF}


def crl_before_revocation(pki: LoopbackPKI, *, issued_days_ago: int = 2, valid_days: int = 7) -> bytes:
    """A genuine CRL of the root, issued before pki.revoked was revoked (so it does not list it)."""
    issued = NOW - timedelta(days=issued_days_ago)
    assert issued < pki.revoked_at
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.root.cert.subject)
        .last_update(issued)
        .next_update(issued + timedelta(days=valid_days))
        .add_extension(x509.CRLNumber(0), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.key.public_key()), critical=False)
        .sign(pki.root.key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def _usp(signature: etree._Element) -> etree._Element:
    qualifying = signature.find("ds:Object/xades:QualifyingProperties", NS)
    assert qualifying is not None
    unsigned = qualifying.find("xades:UnsignedProperties", NS)
    if unsigned is None:
        unsigned = etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties")
    usp = unsigned.find("xades:UnsignedSignatureProperties", NS)
    return usp if usp is not None else etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")


def embed(signature: etree._Element, pki: LoopbackPKI, crl: bytes, *, container: str = "usp") -> None:
    """The root certificate and ``crl``, in RevocationValues or in xadesv141:TimeStampValidationData."""
    usp = _usp(signature)
    parent = usp if container == "usp" else etree.SubElement(usp, f"{{{XADES141}}}TimeStampValidationData")
    values = etree.SubElement(parent, f"{{{XADES}}}CertificateValues")
    etree.SubElement(values, f"{{{XADES}}}EncapsulatedX509Certificate").text = base64.b64encode(pki.root.der).decode()
    revocation = etree.SubElement(etree.SubElement(parent, f"{{{XADES}}}RevocationValues"), f"{{{XADES}}}CRLValues")
    etree.SubElement(revocation, f"{{{XADES}}}EncapsulatedCRLValue").text = base64.b64encode(crl).decode()


def validate(signature: etree._Element, policy: ValidationPolicy) -> SignatureReport:
    reports = validate_xades("offre.xml", etree.tostring(signature), policy, FILES)
    assert len(reports) == 1, reports
    return reports[0]


def signed(pki: LoopbackPKI, who: Identity, tsa: str | None) -> etree._Element:
    signature = sign_detached(FILES, who)
    if tsa is not None:
        add_signature_timestamp(signature, f"{pki.base}{tsa}")
    return signature


@pytest.mark.parametrize("container", ["usp", "timestamp-validation-data"])
@pytest.mark.parametrize("issued_days_ago", [2, 5])
def test_pre_revocation_crl_embedded_by_a_revoked_signer_online(
    pki: LoopbackPKI, policy: ValidationPolicy, container: str, issued_days_ago: int
) -> None:
    # no proof of existence at all: the CA's current CRL says revoked, no POE before: never a pass
    signature = signed(pki, pki.revoked, None)
    embed(signature, pki, crl_before_revocation(pki, issued_days_ago=issued_days_ago), container=container)
    pki.requests.clear()
    report = validate(signature, policy)
    assert report.indication is not Indication.TOTAL_PASSED, report.errors
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)
    assert "GET /root.crl" in pki.requests  # the CA's own list was asked for


def test_pre_revocation_crl_with_a_timestamp_after_the_revocation(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # a signature timestamp of today (after yesterday's revocation): the signature was made revoked
    signature = signed(pki, pki.revoked, "/tsa")
    embed(signature, pki, crl_before_revocation(pki))
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)


def test_pre_revocation_crl_does_not_change_an_honest_outcome(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # the same old CRL in a valid signer's signature: harmless, the signer is not revoked
    signature = signed(pki, pki.signer, "/tsa")
    embed(signature, pki, crl_before_revocation(pki))
    report = validate(signature, policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    # a timestamp before the revocation still saves the revoked signer, whatever CRL it carries
    signature = signed(pki, pki.revoked, "/tsa-past")
    embed(signature, pki, crl_before_revocation(pki, issued_days_ago=3))
    report = validate(signature, policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(w.startswith("certificate.revoked_after_signing") for w in report.warnings), report.warnings


def test_current_embedded_crl_still_answers_when_the_ca_is_down(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # the behaviour to keep: a B-LT whose CRL server is down is judged on the CRL it embeds
    signature = signed(pki, pki.unreachable, "/tsa")
    embed(signature, pki, fetch_crl(pki))
    report = validate(signature, policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors


def ocsp_good(pki: LoopbackPKI, subject: Identity, responder: Identity) -> bytes:
    """A GOOD answer for ``subject`` signed by ``responder`` (a certificate of the trusted root, no OCSP EKU)."""
    from cryptography.x509 import ocsp

    now = NOW.replace(microsecond=0)
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=subject.cert,
            issuer=pki.root.cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
        .certificates([responder.cert])
        .sign(responder.key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )


def test_ocsp_answer_signed_by_an_unauthorised_responder_offline(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # Offline, the embedded OCSP answer is all there is; signed by a certificate of the trusted hierarchy that
    # is no OCSP responder (Alice's), it proves nothing: the status is unknown, never a pass.
    import dataclasses

    offline = dataclasses.replace(policy, offline=True)
    for responder, passes in ((pki.root, True), (pki.signer, False)):
        signature = signed(pki, pki.ocsp_signer, "/tsa")
        usp = _usp(signature)
        values = etree.SubElement(usp, f"{{{XADES}}}CertificateValues")
        for cert in (pki.root, pki.tsa):
            etree.SubElement(values, f"{{{XADES}}}EncapsulatedX509Certificate").text = base64.b64encode(
                cert.der
            ).decode()
        revocation = etree.SubElement(etree.SubElement(usp, f"{{{XADES}}}RevocationValues"), f"{{{XADES}}}OCSPValues")
        answer = ocsp_good(pki, pki.ocsp_signer, responder)
        etree.SubElement(revocation, f"{{{XADES}}}EncapsulatedOCSPValue").text = base64.b64encode(answer).decode()
        report = validate(signature, offline)
        if passes:  # the control: the CA's own answer is accepted
            assert report.indication is Indication.TOTAL_PASSED, report.errors
        else:
            assert report.indication is not Indication.TOTAL_PASSED, report.signer
            assert report.subindication is SubIndication.TRY_LATER, report.errors


def test_pre_revocation_crl_of_a_signer_revoked_then_expired() -> None:
    # Revoked (key compromise) 3 days ago, expired an hour ago, timestamped 2 days ago (after the revocation):
    # REVOKED (tests/xades/test_expiry.py). The signer now embeds the CRL of 4 days ago, still within its
    # nextUpdate, that does not list it yet: the CA's list, which still lists it, decides.
    from tests.xades.pki import PKIServer, _issue

    server = PKIServer()
    try:
        pki = server.pki
        zoe = _issue(
            "Zoe Compromised",
            pki.root,
            not_before=NOW - timedelta(days=400),
            not_after=NOW - timedelta(hours=1),
            crl_url=f"{pki.base}/root.crl",
        )
        revoked = x509.RevokedCertificateBuilder().serial_number(zoe.cert.serial_number)
        pki.crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.root.cert.subject)
            .last_update(NOW - timedelta(hours=1))
            .next_update(NOW + timedelta(days=7))
            .add_revoked_certificate(revoked.revocation_date(NOW - timedelta(days=3)).build())
            .add_extension(x509.CRLNumber(2), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.key.public_key()), critical=False
            )
            .sign(pki.root.key, hashes.SHA256())
            .public_bytes(Encoding.DER)
        )
        signature = signed(pki, zoe, "/tsa-past")
        embed(signature, pki, crl_before_revocation(pki, issued_days_ago=4))
        report = validate(signature, ValidationPolicy(trust_anchors=(pki.root.der,)))
        assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    finally:
        server.close()
