"""PAdES document timestamps for the tests: added, renewed, tampered, or issued by a TSA the DSS does not cover.

pyhanko's ``PdfTimeStamper`` adds the document timestamps; ``DummyTimeStamper`` plays a second TSA whose
certificate the test issues here (its revocation data is nowhere: OCSP only, at a dead address).
"""

# pyhanko's PDF writer and signer methods carry no annotations
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import aiohttp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from tests.pki import TestPKI


def _vc(pki: TestPKI, session: aiohttp.ClientSession) -> ValidationContext:
    return ValidationContext(
        trust_roots=[pki.cert("root")],
        allow_fetching=True,
        fetcher_backend=AIOHttpFetcherBackend(session),
        revocation_mode="require",
    )


def other_tsa(pki: TestPKI, issuer: str = "root", days: int = 365, root_crl: bool = False) -> DummyTimeStamper:
    """A second TSA, certified by ``issuer`` ("root": trusted; "rogue-root": not) for ``days``, whose
    revocation status is only ever given by an OCSP responder that does not answer (no DSS can hold
    it), or with ``root_crl`` by the test root's CRL."""
    issuer_key = serialization.load_der_private_key(pki.key(issuer).dump(), None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    issuer_cert = x509.load_der_x509_certificate(pki.der(issuer))
    crl_url = f"{pki.base_url}/bidproc-test/crls/root/latest.crl"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyhanko's DummyTimeStamper: RSA only
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Second TSA ({issuer})")]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            )
            if root_crl
            else x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(pki.dead_ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tsa_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return DummyTimeStamper(
        tsa_cert=tsa_cert,
        tsa_key=asn1_keys.PrivateKeyInfo.load(der_key),
        certs_to_embed=[tsa_cert, pki.cert(issuer)],  # type: ignore[arg-type]
    )


def add_doc_timestamp(pdf: bytes, pki: TestPKI, tsa: TimeStamper | None = None, with_dss: bool = True) -> bytes:
    """A document timestamp over ``pdf`` by the test PKI's TSA (or ``tsa``); ``with_dss`` then puts the
    TSA's validation data in a DSS revision (what B-LTA requires), otherwise nothing is added."""

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            stamper = tsa or HTTPTimeStamper(pki.tsa_url, session=session)
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
            out = await PdfTimeStamper(stamper).async_timestamp_pdf(
                writer, "sha256", validation_context=_vc(pki, session) if with_dss else None
            )
            return out.getvalue()  # type: ignore[no-any-return]

    return asyncio.run(go())


def renew_archive(pdf: bytes, pki: TestPKI) -> bytes:
    """EN 319 142-1 renewal: the last document timestamp's validation data in the DSS, then a new one."""

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            stamper = PdfTimeStamper(HTTPTimeStamper(pki.tsa_url, session=session))
            out = await stamper.async_update_archival_timestamp_chain(
                PdfFileReader(io.BytesIO(pdf), strict=False), _vc(pki, session), in_place=False
            )
            return out.getvalue()  # type: ignore[no-any-return]

    return asyncio.run(go())


def doc_timestamps(pdf: bytes) -> list[EmbeddedPdfSignature]:
    return [
        s
        for s in PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
        if s.sig_object_type == "/DocTimeStamp"
    ]


def tamper_doc_timestamp(pdf: bytes, index: int = -1, what: str = "signature") -> bytes:
    """One byte of a document timestamp token changed in place: its TSA signature value ("signature"),
    or the message imprint it vouches for ("imprint"). The file's structure is untouched."""
    ts = doc_timestamps(pdf)[index]
    token = bytes(ts.pkcs7_content)
    si = ts.signed_data["signer_infos"][0]
    if what == "signature":
        target = bytes(si["signature"].native)
    else:
        target = bytes(
            ts.signed_data["encap_content_info"]["content"].parsed["message_imprint"]["hashed_message"].native
        )
    assert token.count(target) == 1
    at = token.index(target) + len(target) // 2
    changed = token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
    for case in (str.lower, str.upper):
        old, new = case(token.hex()).encode(), case(changed.hex()).encode()
        if pdf.count(old) == 1:
            return pdf.replace(old, new)
    raise AssertionError("document timestamp token not found in the file")
