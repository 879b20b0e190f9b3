"""B-B signatures report the same best signature time in XAdES as in PAdES (issue 8, class 9)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
from datetime import timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from lxml import etree
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Level, SignatureFormat
from bidproc.signature.validate import validate_file
from tests.signature.signing import make_pdf
from tests.xades.pki import NOW, Identity, LoopbackPKI
from tests.xades.signing import sign_enveloping


def pades_b_b(who: Identity, issuer: Identity) -> bytes:
    """A PAdES B-B (no timestamp) by the XAdES test PKI's signer, with pyhanko."""
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(who.cert.public_bytes(Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            who.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        ),
        cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(issuer.der)]),
    )
    meta = PdfSignatureMetadata(field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES)
    writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf()), strict=False)
    out = asyncio.run(PdfSigner(meta, signer).async_sign_pdf(writer))
    return bytes(out.getvalue())


def test_b_b_best_signature_time_agrees_with_pades(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    at = NOW + timedelta(minutes=5)
    fixed = dataclasses.replace(policy, at=at)
    xml = bytes(etree.tostring(sign_enveloping(etree.fromstring(b"<Offre>100000 EUR</Offre>"), pki.signer)))
    pdf = pades_b_b(pki.signer, pki.root)
    xades = validate_file("offre.xml", xml, fixed).signatures[0]
    pades = validate_file("offre.pdf", pdf, fixed).signatures[0]
    assert (xades.format, pades.format) == (SignatureFormat.XADES, SignatureFormat.PADES)
    assert xades.level is Level.B_B and pades.level is Level.B_B
    # no proof of existence: the validation time, in both formats
    assert xades.best_signature_time == pades.best_signature_time == at

    # a deposit proof of existence (the bid's receipt) moves it earlier, and is listed, in both formats
    deposit = NOW - timedelta(hours=1)
    for name, data in (("offre.xml", xml), ("offre.pdf", pdf)):
        proved = dataclasses.replace(fixed, proofs_of_existence=((hashlib.sha256(data).hexdigest(), deposit),))
        report = validate_file(name, data, proved).signatures[0]
        assert report.best_signature_time == deposit, name
        assert [(t.kind, t.time, t.valid) for t in report.timestamps if t.kind == "deposit"] == [
            ("deposit", deposit, True)
        ], name


def test_the_callers_validation_time_is_used_without_a_point_in_time(
    pki: LoopbackPKI, policy: ValidationPolicy
) -> None:
    """``now`` passed by the caller (the pipeline's clock, read once) is the validation time of every
    format; the policy asks for no point-in-time validation (``at`` stays None)."""
    later = NOW + timedelta(minutes=7)
    xml = bytes(etree.tostring(sign_enveloping(etree.fromstring(b"<Offre>100000 EUR</Offre>"), pki.signer)))
    pdf = pades_b_b(pki.signer, pki.root)
    assert policy.at is None
    for name, data in (("offre.xml", xml), ("offre.pdf", pdf)):
        report = validate_file(name, data, policy, now=later).signatures[0]
        assert report.level is Level.B_B and report.best_signature_time == later, name
