"""The service's PAdES seal on a PDF bidproc produced (e.g. a validation report), so it can be filed.

pyhanko's ``PdfSigner`` does the PAdES work (signature, DSS, document timestamp); what is ours is the
glue: the seal credential of the local PKI, a ``TimeStamper`` that asks bidproc's own
:class:`~bidproc.timestamps.tsa.TimestampAuthority` (the embedded one has no HTTP endpoint), and the
validation data (the local root's CRL) that makes the seal B-LT and checkable offline.
"""

# pyhanko's signer and writer constructors carry no annotations
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bidproc.timestamps.localca import LocalPKI
from bidproc.timestamps.tsa import TimestampAuthority

SEAL_FIELD = "BidprocSeal"


class _OfflineOnPurpose(logging.Filter):
    """pyhanko warns when validation data is embedded without fetching: here that is the design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Validation/revocation info will be embedded, but fetching")


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_OfflineOnPurpose())


def _der(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class AuthorityTimeStamper(TimeStamper):
    """pyhanko asks for a token; bidproc's TSA (embedded or remote, already checked) gives it."""

    def __init__(self, tsa: TimestampAuthority, clock: Callable[[], datetime]) -> None:
        super().__init__(include_nonce=False)
        self._tsa = tsa
        self._clock = clock

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        if md_algorithm != "sha256":  # bidproc's TSAs are asked for SHA-256 imprints only
            raise ValueError(f"timestamp digest {md_algorithm} not supported")
        # RemoteTSA runs its own event loop: keep it off this one.
        stamp = await asyncio.to_thread(self._tsa.timestamp, message_digest, self._clock())
        return cms.ContentInfo.load(stamp.token_der)


def seal_pdf(
    pdf: bytes,
    pki: LocalPKI,
    tsa: TimestampAuthority,
    *,
    tsa_roots: tuple[bytes, ...] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    reason: str = "bidproc signature validation report",
) -> bytes:
    """``pdf`` sealed by the service: PAdES B-LT when the local PKI has its CRL, else B-T."""
    return asyncio.run(_seal(pdf, pki, tsa, tsa_roots, clock, reason))


async def _seal(
    pdf: bytes,
    pki: LocalPKI,
    tsa: TimestampAuthority,
    tsa_roots: tuple[bytes, ...],
    clock: Callable[[], datetime],
    reason: str,
) -> bytes:
    root = _der(pki.root)
    key = asn1_keys.PrivateKeyInfo.load(
        pki.seal.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=_der(pki.seal.certificate),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([root, _der(pki.tsa.certificate)]),
    )
    long_term = pki.crl is not None
    vc: Any = None
    if long_term:
        assert pki.crl is not None
        # Offline on purpose: everything needed is local, and nothing is fetched while sealing.
        vc = ValidationContext(
            trust_roots=[root, *(asn1_x509.Certificate.load(r) for r in tsa_roots)],
            crls=[crl.CertificateList.load(pki.crl)],
            allow_fetching=False,
            revocation_mode="require",
            moment=clock(),
        )
    meta = PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        reason=reason,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=long_term,
        # B-LT, not B-LTA: bidproc verify validates a document timestamp with the caller's validation
        # data only (pades.py ``_doc_timestamp`` does not read the DSS), so an offline check of a
        # B-LTA seal reports its archive timestamp INDETERMINATE/TRY_LATER. The evidence archive
        # re-timestamps what it keeps; this seal only needs to be checkable now and later, offline.
        use_pades_lta=False,
        validation_context=vc,
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer = PdfSigner(meta, signer, timestamper=AuthorityTimeStamper(tsa, clock))
    out = await pdf_signer.async_sign_pdf(writer)
    return bytes(out.getvalue())
