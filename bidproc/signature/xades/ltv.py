"""XAdES B-LT: the validation data a signature carries (ETSI EN 319 132-1 §5.4), and whether it suffices.

Read here: ``xades:CertificateValues`` (EncapsulatedX509Certificate), ``xades:RevocationValues``
(EncapsulatedCRLValue, EncapsulatedOCSPValue) and ``xadesv141:TimeStampValidationData`` (the same two
children, for timestamps), all in the UnsignedSignatureProperties. They go to pyhanko-certvalidator's
``ValidationContext`` as ``other_certs``, ``crls`` and ``ocsps``, so chain building and revocation checking
use them exactly like fetched data (online) or instead of it (offline).

B-LT is claimed only when the embedded values *alone* validate the chain: ``coverage_context`` is a context
with no fetching at all, revocation data required for every certificate below the trust anchor, and only
the certificates the signature itself carries (KeyInfo and the values above).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy

from bidproc.signature.xades.timestamps import NS

XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
NS_ALL = {**NS, "xadesv141": XADES141}
USP = "xades:UnsignedProperties/xades:UnsignedSignatureProperties"


@dataclass
class ValidationData:
    """What the signature embeds; ``problems`` lists values that could not be read (they are ignored)."""

    certificates: list[asn1_x509.Certificate] = field(default_factory=list)
    crls: list[asn1_crl.CertificateList] = field(default_factory=list)
    ocsps: list[asn1_ocsp.OCSPResponse] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def has_revocation_values(self) -> bool:
        return bool(self.crls or self.ocsps)


def _decode(node: etree._Element) -> bytes:
    return base64.b64decode("".join((node.text or "").split()), validate=True)


def read_validation_data(qualifying_properties: etree._Element) -> ValidationData:
    """Every CertificateValues/RevocationValues of the signature, TimeStampValidationData included."""
    found = ValidationData()
    containers = [
        *qualifying_properties.findall(USP, NS_ALL),
        *qualifying_properties.findall(f"{USP}/xadesv141:TimeStampValidationData", NS_ALL),
    ]
    for container in containers:
        for node in container.findall("xades:CertificateValues/xades:EncapsulatedX509Certificate", NS_ALL):
            try:
                cert = asn1_x509.Certificate.load(_decode(node), strict=True)
                _ = cert.native  # asn1crypto parses lazily: make garbage fail here
                found.certificates.append(cert)
            except (ValueError, TypeError, binascii.Error) as exc:
                found.problems.append(f"unreadable EncapsulatedX509Certificate: {exc}")
        for node in container.findall("xades:RevocationValues/xades:CRLValues/xades:EncapsulatedCRLValue", NS_ALL):
            try:
                crl = asn1_crl.CertificateList.load(_decode(node), strict=True)
                _ = crl.native
                found.crls.append(crl)
            except (ValueError, TypeError, binascii.Error) as exc:
                found.problems.append(f"unreadable EncapsulatedCRLValue: {exc}")
        path = "xades:RevocationValues/xades:OCSPValues/xades:EncapsulatedOCSPValue"
        for node in container.findall(path, NS_ALL):
            try:
                response = asn1_ocsp.OCSPResponse.load(_decode(node), strict=True)
                _ = response.native
                found.ocsps.append(response)
            except (ValueError, TypeError, binascii.Error) as exc:
                found.problems.append(f"unreadable EncapsulatedOCSPValue: {exc}")
        for node in container.findall("xades:RevocationValues/xades:OtherValues", NS_ALL):
            found.problems.append(f"xades:OtherValues ignored ({len(node)} value(s) of an unknown kind)")
    return found


def coverage_context(
    trust_anchors: tuple[bytes, ...],
    carried: list[asn1_x509.Certificate],
    data: ValidationData,
    moment: datetime,
) -> ValidationContext:
    """A context that can only succeed on what the signature carries: no fetching, revocation data required.

    ``moment`` is the signature's proof of existence (the signature timestamp): the embedded data was
    collected for that time, and revocation data issued after it is evidence of the status then.
    """
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der) for der in trust_anchors],
        other_certs=[*carried, *data.certificates],
        moment=moment,
        retroactive_revinfo=True,
        allow_fetching=False,
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
        crls=list(data.crls),
        ocsps=list(data.ocsps),
    )
