"""Hostile counts are bounded: a CMS with hundreds of signers, an XML file with hundreds of signatures."""

from __future__ import annotations

import datetime as dt
import time

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from bidproc.signature.cades.validator import MAX_SIGNERS
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.validate import validate_file


def test_cms_with_hundreds_of_signers_is_bounded() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    data = b"offre" * 100
    der = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256()).sign(
        serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    signed_data = cms.ContentInfo.load(der)["content"]
    one = signed_data["signer_infos"][0]
    signed_data["signer_infos"] = cms.SignerInfos([cms.SignerInfo.load(one.dump()) for _ in range(400)])
    blob = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    start = time.monotonic()
    report = validate_file("x.p7s", blob, ValidationPolicy(offline=True), {"x": data})
    assert time.monotonic() - start < 30
    assert len(report.signatures) == MAX_SIGNERS + 1 and not report.bottom_line
    first = report.signatures[0]
    assert (first.indication, first.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert "400 signers" in first.errors[0]


def test_naive_validation_times_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="time zone"):
        ValidationPolicy(at=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="time zone"):
        ValidationPolicy(proofs_of_existence=(("00" * 32, dt.datetime(2026, 1, 1)),))
