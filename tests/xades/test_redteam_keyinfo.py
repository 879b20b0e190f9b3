"""Red team: KeyInfo cannot choose the key that verifies the signature.

The signature is checked with the key of the certificate xades:SigningCertificate(V2) names, never with a
KeyValue the file carries: an attacker signing with its own key under a victim's certificate (whose digest it
puts in the signed properties) must fail, whatever KeyInfo says.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import LoopbackPKI
from tests.xades.signing import NS


def test_attacker_key_under_the_victims_certificate(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    for add_key_value in (False, True):  # KeyInfo with the attacker's own ECKeyValue, or without
        document = etree.fromstring(b"<Offre><Prix>1 EUR</Prix></Offre>")
        signer = XAdESSigner(
            method=SignatureConstructionMethod.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256
        )
        signed = signer.sign(document, key=attacker, cert=[pki.signer.cert], always_add_key_value=add_key_value)
        assert (signed.find(".//ds:KeyInfo/ds:KeyValue", NS) is not None) is add_key_value
        reports = validate_xades("offre.xml", etree.tostring(signed), policy, {})
        assert len(reports) == 1
        report = reports[0]
        assert report.indication is not Indication.TOTAL_PASSED, report.signer
        assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE)
