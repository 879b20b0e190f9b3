"""Red team: revocation data a PAdES or CAdES signature carries must not hide a revocation its CA publishes.

A signer revoked yesterday keeps the CRL its CA issued *before* the revocation (genuine, signed by the CA,
its nextUpdate still days ahead, as CAs publish weekly lists) and embeds it: in the PDF's DSS, or in a
CAdES revocation-values attribute. Validated online, the CA's current answer must decide (REVOKED), not
the list the signature chose to carry. (The XAdES form of this attack: tests/xades/test_redteam_revocation.py.)
"""

from __future__ import annotations

import io
from datetime import timedelta

from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport
from bidproc.signature.validate import validate_files
from tests.pki import TestPKI
from tests.signature.signing import add_revocation_values, sign_cms, sign_pdf

BID = b"Acte d'engagement: lot 1, montant 98 000 EUR HT"


def crl_before_revocation(pki: TestPKI) -> bytes:
    """A genuine CRL of the intermediate CA, issued two days ago (before "revoked-before" was revoked,
    a day ago), valid for a week: it does not list the signer."""
    issued = pki.t0 - timedelta(days=2)
    key = serialization.load_der_private_key(pki.key("interm").dump(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    issuer = x509.load_der_x509_certificate(pki.der("interm"))
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(issued)
        .next_update(issued + timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def one(files: dict[str, bytes], name: str, pki: TestPKI) -> SignatureReport:
    report = validate_files(files, ValidationPolicy(trust_anchors=(pki.root_der,)))[name]
    assert len(report.signatures) == 1, report
    return report.signatures[0]


def test_cades_embedded_old_crl_does_not_hide_the_revocation(pki: TestPKI) -> None:
    p7s = sign_cms(BID, pki, "revoked-before", detached=True, timestamp=True)
    carried = add_revocation_values(p7s, [], [crl_before_revocation(pki)])
    sig = one({"acte.txt.p7s": carried, "acte.txt": BID}, "acte.txt.p7s", pki)
    assert sig.indication is not Indication.TOTAL_PASSED, (sig.indication, sig.subindication, sig.errors)


def test_pades_dss_old_crl_does_not_hide_the_revocation(pki: TestPKI, pdf: bytes) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    signed = sign_pdf(pdf, pki, label="revoked-before", level="B-T")
    cms_blob = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0].pkcs7_content
    out = io.BytesIO(signed)
    DocumentSecurityStore.add_dss(out, cms_blob, certs=pki.chain("revoked-before"), ocsps=[],
                                  crls=[asn1_crl.CertificateList.load(crl_before_revocation(pki))])
    sig = one({"acte.pdf": out.getvalue()}, "acte.pdf", pki)
    assert sig.indication is not Indication.TOTAL_PASSED, (sig.indication, sig.subindication, sig.errors)
