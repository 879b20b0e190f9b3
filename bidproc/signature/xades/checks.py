"""The building blocks of XAdES validation (see ``xades.py`` for who does what and why)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from signxml.algorithms import DigestAlgorithm, digest_algorithm_implementations

from bidproc.signature.report import (
    FrenchRuleCheck,
    Indication,
    RuleOutcome,
    SignatureFormat,
    SignatureReport,
    Signer,
    SubIndication,
)
from bidproc.signature.xades.timestamps import NS

Failure = tuple[Indication, SubIndication, str]
INTEGRITY_FAILURES = {SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE}


def signer_of(cert: x509.Certificate) -> Signer:
    def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None

    return Signer(
        subject=cert.subject.rfc4514_string(),
        common_name=attr(cert.subject, NameOID.COMMON_NAME),
        organisation=attr(cert.subject, NameOID.ORGANIZATION_NAME),
        serial_number=attr(cert.subject, NameOID.SERIAL_NUMBER),
        issuer=cert.issuer.rfc4514_string(),
        certificate_sha256=cert.fingerprint(digest_algorithm_implementations[DigestAlgorithm.SHA256]()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        certificate_der=cert.public_bytes(Encoding.DER),  # for the qualification step (trust, issue 12)
    )


def french(fmt: RuleOutcome, integrity: RuleOutcome, cert_valid: RuleOutcome, signer: Signer | None) -> FrenchRuleCheck:
    """Arrêté of 22 March 2019 points; the certificate category is set afterwards (signature.trust.assess)."""
    identity = RuleOutcome.PASSED if signer and (signer.common_name or signer.organisation) else RuleOutcome.FAILED
    points = {
        "format": fmt,
        "certificate_valid_at_signing_time": cert_valid,
        "integrity": integrity,
        "signer_identity": identity,
    }
    failed = tuple(k for k, v in points.items() if v is RuleOutcome.FAILED)
    return FrenchRuleCheck(
        format=fmt,
        certificate_valid_at_signing_time=cert_valid,
        integrity=integrity,
        signer_identity=identity,
        failed=failed,
    )


def verdict(
    name: str, sig_id: str | None, indication: Indication, sub: SubIndication | None, **fields: Any
) -> SignatureReport:
    return SignatureReport(
        file=name,
        format=SignatureFormat.XADES,
        indication=indication,
        subindication=sub,
        signature_id=sig_id,
        french_rule=fields.pop("french"),
        **fields,
    )


def format_failure(name: str, sig_id: str | None, reason: str) -> SignatureReport:
    no = RuleOutcome.NOT_CHECKED
    return verdict(
        name,
        sig_id,
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
        errors=(reason,),
        french=french(RuleOutcome.FAILED, no, no, None),
    )


def internal_error(name: str, sig_id: str | None, exc: Exception) -> SignatureReport:
    """Not the signature's fault, as far as we know: INDETERMINATE, never a verdict against the bidder."""
    no = RuleOutcome.NOT_CHECKED
    return verdict(
        name,
        sig_id,
        Indication.INDETERMINATE,
        SubIndication.GENERIC,
        errors=(f"internal error during validation: {type(exc).__name__}: {exc}",),
        french=FrenchRuleCheck(format=no, certificate_valid_at_signing_time=no, integrity=no, signer_identity=no),
    )


@dataclass(frozen=True)
class Parts:
    signature: etree._Element
    qualifying_properties: etree._Element
    signed_properties: etree._Element


def locate_parts(signature: etree._Element) -> Parts | str:
    """The QualifyingProperties that target this signature (EN 319 132-1 §4.3), or why there are none."""
    sig_id = signature.get("Id")
    if not sig_id:
        return "ds:Signature has no Id, so no XAdES QualifyingProperties can target it"
    found = [
        q for q in signature.findall("ds:Object/xades:QualifyingProperties", NS) if q.get("Target") == f"#{sig_id}"
    ]
    if len(found) != 1:
        return f"expected one xades:QualifyingProperties (v1.3.2 namespace) targeting #{sig_id}, found {len(found)}"
    signed = found[0].findall("xades:SignedProperties", NS)
    if len(signed) != 1:
        return "expected exactly one xades:SignedProperties"
    return Parts(signature, found[0], signed[0])


def identify_signing_certificate(
    parts: Parts, known: tuple[bytes, ...] = ()
) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
    """EN 319 102-1 §5.2.3: the certificate whose digest xades:SigningCertificate(V2) names first.

    Looked for in KeyInfo, then among ``known`` certificates (the policy's extra certificates): a signature
    may leave its certificate out of KeyInfo and identify it by digest only.
    """
    certs = [x509.load_der_x509_certificate(der) for der in known]
    for node in parts.signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()))))
        except ValueError:
            continue
    ssp = parts.signed_properties.find("xades:SignedSignatureProperties", NS)
    refs = [] if ssp is None else ssp.findall("xades:SigningCertificateV2/xades:Cert/xades:CertDigest", NS)
    refs = refs or ([] if ssp is None else ssp.findall("xades:SigningCertificate/xades:Cert/xades:CertDigest", NS))
    if not refs:
        return None, certs
    try:
        algorithm = DigestAlgorithm(refs[0].find("ds:DigestMethod", NS).get("Algorithm"))
        expected = base64.b64decode(refs[0].findtext("ds:DigestValue", "", NS).strip())
    except (ValueError, AttributeError):
        return None, certs
    implementation = digest_algorithm_implementations[algorithm]()
    return next((c for c in certs if c.fingerprint(implementation) == expected), None), certs
