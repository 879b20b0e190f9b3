"""Red-team: CAdES and PAdES timestamps and ESS binding, signer trusted throughout.

The hole found here: a content timestamp (a signed attribute: the signer had it before signing) later
than the signature timestamp (made over the finished signature value). One of the two TSAs is wrong
about the time; the signature timestamp is what the best signature time rests on, so a revocation
between the two could be "proven" before. EN 319 102-1 §5.5.4 (validation process for signatures with
time) answers INDETERMINATE/TIMESTAMP_ORDER_FAILURE. pyhanko's with-time process reads content
timestamps only for a signer revoked or expired without proof of existence, so it passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields
from pyhanko.sign.ades.api import CAdESSignedAttrSpec
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import dummy_digest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.validate import validate_files
from tests.pki import FAKE_TIME_HEADER, TestPKI
from tests.signature.cms_craft import resign, signed_attrs_of
from tests.signature.signing import make_pdf, sign_cms, signer_for

BID = b"Offre financiere: bordereau des prix unitaires, total 61 300 EUR HT"
ORDER_FAILURE = (Indication.INDETERMINATE, SubIndication.TIMESTAMP_ORDER_FAILURE)


class TwoClocks(HTTPTimeStamper):
    """The first real request (the content timestamp: it is made while the signed attributes are built)
    is stamped at ``content_at``, every later one (the signature timestamp) at ``signature_at`` (None: the
    TSA's own clock). Size-estimation requests over pyhanko's dummy digest keep the real clock."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession, content_at: datetime | None, signature_at: datetime | None
    ) -> None:
        super().__init__(url, session=session)
        self.content_at, self.signature_at = content_at, signature_at
        self.real_requests = 0

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        when = None
        if message_digest != dummy_digest(md_algorithm):
            self.real_requests += 1
            when = self.content_at if self.real_requests == 1 else self.signature_at
        self.headers = {FAKE_TIME_HEADER: when.isoformat()} if when else None
        return await super().async_timestamp(message_digest, md_algorithm)


def _clocks(pki: TestPKI, session: aiohttp.ClientSession, order: str) -> TwoClocks:
    now = datetime.now(UTC)
    if order == "content-first":  # the normal order: content timestamp, then signature timestamp
        return TwoClocks(pki.tsa_url, session, now - timedelta(hours=2), None)
    if order == "signature-first":
        return TwoClocks(pki.tsa_url, session, None, now - timedelta(hours=2))
    assert order == "content-only"  # B-B with a content timestamp
    return TwoClocks(pki.tsa_url, session, None, None)


def cades_with_content_ts(pki: TestPKI, order: str) -> bytes:
    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            stamper = _clocks(pki, session, order)
            settings = PdfCMSSignedAttributes(cades_signed_attrs=CAdESSignedAttrSpec(timestamp_content=True))
            signed = await signer_for(pki, "signer").async_sign_general_data(
                BID,
                "sha256",
                detached=True,
                use_cades=True,
                timestamper=stamper,
                signed_attr_settings=settings,
            )
            if order == "content-only":  # keep the content timestamp, drop the signature timestamp
                signed["content"]["signer_infos"][0]["unsigned_attrs"] = None
            assert stamper.real_requests == 2  # the content timestamp, then the signature timestamp
            return bytes(signed.dump(force=True))

    return asyncio.run(go())


def pades_with_content_ts(pki: TestPKI, order: str) -> bytes:
    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            meta = PdfSignatureMetadata(
                field_name="Signature1",
                subfilter=fields.SigSeedSubFilter.PADES,
                cades_signed_attr_spec=CAdESSignedAttrSpec(timestamp_content=True),
            )
            writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf()), strict=False)
            signer = PdfSigner(meta, signer_for(pki, "signer"), timestamper=_clocks(pki, session, order))
            out = await signer.async_sign_pdf(writer)
            return bytes(out.getvalue())

    return asyncio.run(go())


def verdict(pki: TestPKI, files: dict[str, bytes], name: str, **policy: Any) -> SignatureReport:
    report = validate_files(files, ValidationPolicy(trust_anchors=(pki.root_der,), **policy))[name]
    assert not report.problems and len(report.signatures) == 1
    return report.signatures[0]


# ---- content timestamp after the signature timestamp ---------------------------------------------


@pytest.mark.parametrize("fmt", ["cades", "pades"])
def test_content_timestamp_after_the_signature_timestamp_is_an_order_failure(pki: TestPKI, fmt: str) -> None:
    if fmt == "cades":
        sig = verdict(
            pki, {"offre.txt": BID, "offre.txt.p7s": cades_with_content_ts(pki, "signature-first")}, "offre.txt.p7s"
        )
    else:
        sig = verdict(pki, {"offre.pdf": pades_with_content_ts(pki, "signature-first")}, "offre.pdf")
    assert (sig.indication, sig.subindication) == ORDER_FAILURE, (sig.indication, sig.subindication, sig.errors)
    assert any("content timestamp" in e for e in sig.errors)


@pytest.mark.parametrize("fmt", ["cades", "pades"])
def test_content_timestamp_before_the_signature_timestamp_passes(pki: TestPKI, fmt: str) -> None:
    """Control: the same material in the order a signer's software makes it."""
    if fmt == "cades":
        sig = verdict(
            pki, {"offre.txt": BID, "offre.txt.p7s": cades_with_content_ts(pki, "content-first")}, "offre.txt.p7s"
        )
    else:
        sig = verdict(pki, {"offre.pdf": pades_with_content_ts(pki, "content-first")}, "offre.pdf")
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors)


def test_content_timestamp_after_the_deposit_proof_is_an_order_failure(pki: TestPKI) -> None:
    """B-B with a content timestamp, deposited (proof of existence given by the caller) before it."""
    p7s = cades_with_content_ts(pki, "content-only")
    deposited = datetime.now(UTC)  # after the content timestamp: the order a real deposit has
    earlier = deposited - timedelta(hours=1)
    proofs = ((hashlib.sha256(p7s).hexdigest(), earlier),)
    sig = verdict(pki, {"offre.txt": BID, "offre.txt.p7s": p7s}, "offre.txt.p7s", proofs_of_existence=proofs)
    assert (sig.indication, sig.subindication) == ORDER_FAILURE, (sig.indication, sig.subindication, sig.errors)
    later = ((hashlib.sha256(p7s).hexdigest(), deposited),)
    sig = verdict(pki, {"offre.txt": BID, "offre.txt.p7s": p7s}, "offre.txt.p7s", proofs_of_existence=later)
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors)


# ---- ESS signing-certificate binding (pins: pyhanko refuses these) --------------------------------


def _ess(cert_der: bytes, serial_of: Any) -> cms.CMSAttribute:
    certid = tsp.ESSCertIDv2(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "cert_hash": hashlib.sha256(cert_der).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(name="directory_name", value=serial_of.issuer)],
                "serial_number": serial_of.serial_number,
            },
        }
    )
    return cms.CMSAttribute(
        {"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({"certs": [certid]})]}
    )


@pytest.mark.parametrize("which", ["hash-of-another-cert", "issuer-serial-of-another-cert", "two-attributes"])
def test_signing_certificate_v2_not_binding_the_signer_fails(pki: TestPKI, which: str) -> None:
    signed = sign_cms(BID, pki, timestamp=False)
    attrs = [a for a in signed_attrs_of(signed) if a["type"].native != "signing_certificate_v2"]
    signer, other = pki.cert("signer"), pki.cert("revoked-after")
    if which == "hash-of-another-cert":
        ess = [_ess(other.dump(), other)]
    elif which == "issuer-serial-of-another-cert":
        ess = [_ess(signer.dump(), other)]
    else:
        ess = [_ess(signer.dump(), signer), _ess(other.dump(), other)]
    forged = resign(signed, pki, "signer", cms.CMSAttributes([*attrs, *ess]))
    sig = verdict(pki, {"offre.txt": BID, "offre.txt.p7s": forged}, "offre.txt.p7s")
    assert sig.indication is not Indication.TOTAL_PASSED, sig.errors
    control = resign(signed, pki, "signer", cms.CMSAttributes([*attrs, _ess(signer.dump(), signer)]))
    assert (
        verdict(pki, {"offre.txt": BID, "offre.txt.p7s": control}, "offre.txt.p7s").indication
        is Indication.TOTAL_PASSED
    )


def test_signature_timestamp_of_another_signature_fails(pki: TestPKI) -> None:
    """A genuine signature timestamp, lifted from another signature of the same signer."""
    target = sign_cms(BID, pki, timestamp=False)
    donor = cms.ContentInfo.load(sign_cms(b"autre offre", pki))
    info = cms.ContentInfo.load(target)
    info["content"]["signer_infos"][0]["unsigned_attrs"] = donor["content"]["signer_infos"][0]["unsigned_attrs"]
    forged = bytes(info.dump(force=True))
    sig = verdict(pki, {"offre.txt": BID, "offre.txt.p7s": forged}, "offre.txt.p7s")
    assert sig.indication is not Indication.TOTAL_PASSED, (sig.subindication, sig.level)
