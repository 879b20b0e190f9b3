"""A signer revoked (key compromise) before signing, and expired since, never passes."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, RuleOutcome, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import NOW, PKIServer, _issue
from tests.xades.signing import add_signature_timestamp, sign_detached

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def test_revoked_then_expired_signer_fails() -> None:
    server = PKIServer()
    try:
        pki = server.pki
        zoe = _issue("Zoe Compromised", pki.root, not_before=NOW - timedelta(days=400),
                     not_after=NOW - timedelta(hours=1), crl_url=f"{pki.base}/root.crl")
        pki.crl = (
            x509.CertificateRevocationListBuilder().issuer_name(pki.root.cert.subject)
            .last_update(NOW - timedelta(hours=1)).next_update(NOW + timedelta(days=7))
            .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(zoe.cert.serial_number)
                                     .revocation_date(NOW - timedelta(days=3)).build())
            .add_extension(x509.CRLNumber(2), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.root.key.public_key()),
                           critical=False)
            .sign(pki.root.key, hashes.SHA256()).public_bytes(Encoding.DER)
        )
        signature = sign_detached({"offre.pdf": PDF}, zoe)
        add_signature_timestamp(signature, f"{pki.base}/tsa-past")  # after the revocation, before expiry
        data = etree.tostring(signature, xml_declaration=True, encoding="UTF-8")
        report = validate_xades("offre.xml", data, ValidationPolicy(trust_anchors=(pki.root.der,)),
                                {"offre.pdf": PDF})[0]
        assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
        assert report.french_rule is not None
        assert report.french_rule.certificate_valid_at_signing_time is RuleOutcome.FAILED
    finally:
        server.close()
