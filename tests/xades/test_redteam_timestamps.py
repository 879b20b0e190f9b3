"""Red team: SignatureTimeStamps that must prove nothing (wrong TSA, wrong input, wrong canonicalisation).

A signature timestamp is the proof of existence that saves a signer revoked or expired since: a forged or
misapplied one would turn REVOKED into TOTAL_PASSED. Tokens are real RFC 3161 tokens (pyhanko's
DummyTimeStamper), issued by TSAs built here with cryptography.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, SignatureReport
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import NOW, Identity, LoopbackPKI
from tests.xades.signing import C14N_10, DS, EXC_C14N, NS, XADES, sign_detached

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% offre\n%%EOF\n"
FILES = {"offre.pdf": PDF}


def rsa_identity(pki: LoopbackPKI, cn: str, *, eku: bool) -> Identity:
    """An RSA certificate under the trusted root, with or without the timeStamping extended key usage."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(pki.root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(True, not eku, False, False, False, False, False, False, False), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:  # a signing certificate, as the signer would hold one
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    return Identity(key, builder.sign(pki.root.key, hashes.SHA256()))


def token(who: Identity, imprint_source: bytes, *, days_ago: int = 0) -> bytes:
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(who.der),
        tsa_key=asn1_keys.PrivateKeyInfo.load(who.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())),
        fixed_dt=NOW - timedelta(days=days_ago) if days_ago else None,
    )
    digest = hashlib.sha256(imprint_source).digest()
    return bytes(asyncio.run(stamper.async_timestamp(digest, "sha256")).dump())


def add_timestamp(signature: etree._Element, der: bytes, method: str | None) -> None:
    qualifying = signature.find("ds:Object/xades:QualifyingProperties", NS)
    unsigned = etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties")
    usp = etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")
    stamp = etree.SubElement(usp, f"{{{XADES}}}SignatureTimeStamp", Id="ts")
    if method is not None:
        etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm=method)
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = base64.b64encode(der).decode()


def c14n(element: etree._Element, *, exclusive: bool) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=False))


def validate(signature: etree._Element, policy: ValidationPolicy) -> SignatureReport:
    reports = validate_xades("offre.xml", etree.tostring(signature), policy, FILES)
    assert len(reports) == 1, reports
    return reports[0]


@pytest.fixture(scope="module")
def rogue(pki: LoopbackPKI) -> Identity:
    return rsa_identity(pki, "Revoked Signer's other certificate", eku=False)


@pytest.fixture(scope="module")
def honest_tsa(pki: LoopbackPKI) -> Identity:
    return rsa_identity(pki, "Second TSA", eku=True)


def test_backdated_token_from_a_certificate_that_is_no_tsa(
    pki: LoopbackPKI, policy: ValidationPolicy, rogue: Identity, honest_tsa: Identity
) -> None:
    # The revoked signer stamps its own SignatureValue, dated before its revocation, with a certificate of
    # the trusted hierarchy that is not a TSA's: no proof of existence, the revocation stands.
    for who, expected_pass in ((honest_tsa, True), (rogue, False)):
        signature = sign_detached(FILES, pki.revoked)
        value = signature.find("ds:SignatureValue", NS)
        add_timestamp(signature, token(who, c14n(value, exclusive=False), days_ago=2), C14N_10)
        report = validate(signature, policy)
        if expected_pass:  # the control: the same backdated token from a real TSA saves the signature
            assert report.indication is Indication.TOTAL_PASSED, report.errors
        else:
            assert report.indication is not Indication.TOTAL_PASSED, report.timestamps
            assert report.level is Level.B_B


def test_token_from_a_tsa_outside_the_trust_anchors(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    signature = sign_detached(FILES, pki.revoked)
    value = signature.find("ds:SignatureValue", NS)
    untrusted = Identity(pki.untrusted_tsa.key, pki.untrusted_tsa.cert)
    add_timestamp(signature, token(untrusted, c14n(value, exclusive=False), days_ago=2), C14N_10)
    report = validate(signature, policy)
    assert report.indication is not Indication.TOTAL_PASSED, report.timestamps
    assert report.level is Level.B_B


@pytest.mark.parametrize(
    ("stamped", "declared", "valid"),
    [
        ("value-inclusive", C14N_10, True),
        ("value-inclusive", None, True),  # C14N 1.0 is the default
        ("value-exclusive", EXC_C14N, True),
        ("value-exclusive", C14N_10, False),  # stamped one way, declared another
        ("value-exclusive", None, False),
        ("value-inclusive", EXC_C14N, False),
        ("signed-info", C14N_10, False),  # another element of the signature
        ("value-text", C14N_10, False),  # the base64 text alone, not the element
        ("value-bytes", C14N_10, False),  # the raw signature bytes
    ],
)
def test_token_over_the_right_bytes_only(
    pki: LoopbackPKI, policy: ValidationPolicy, honest_tsa: Identity, stamped: str, declared: str | None, valid: bool
) -> None:
    # a revoked signer, a genuine TSA's token dated before the revocation: it saves the signature only when its
    # imprint is the SignatureValue canonicalised with the declared method
    signature = sign_detached(FILES, pki.revoked)
    value = signature.find("ds:SignatureValue", NS)
    source = {
        "value-inclusive": lambda: c14n(value, exclusive=False),
        "value-exclusive": lambda: c14n(value, exclusive=True),
        "signed-info": lambda: c14n(signature.find("ds:SignedInfo", NS), exclusive=False),
        "value-text": lambda: (value.text or "").encode(),
        "value-bytes": lambda: base64.b64decode(value.text or ""),
    }[stamped]()
    assert c14n(value, exclusive=False) != c14n(value, exclusive=True)  # the two methods really differ here
    add_timestamp(signature, token(honest_tsa, source, days_ago=2), declared)
    report = validate(signature, policy)
    if valid:
        assert report.indication is Indication.TOTAL_PASSED, report.errors
        assert report.level is Level.B_T
    else:
        assert report.indication is not Indication.TOTAL_PASSED, report.timestamps
        assert report.level is Level.B_B
