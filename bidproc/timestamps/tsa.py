"""RFC 3161: get a timestamp response for a digest, from a configured TSA or the embedded one.

The HTTP client is pyhanko's ``HTTPTimeStamper`` with our own aiohttp session; the embedded TSA signs
with pyhanko's timestamper machinery under the local PKI's TSA certificate. Either way the response is
checked (status granted, our digest, our nonce) before anyone relies on it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from bidproc.errors import BidprocError, Code
from bidproc.timestamps.localca import LocalPKI
from bidproc.timestamps.verify import verify_response

# An OID under the UUID arc (ITU-T X.667, 2.25): ours without registration, for the local TSA's policy.
LOCAL_TSA_POLICY = "2.25.160113898497616327155395018227329339633"


@dataclass(frozen=True)
class Timestamp:
    response_der: bytes  # the whole TimeStampResp (what `openssl ts -verify -in` reads)
    time: datetime
    tsa: str
    qualified: bool

    @property
    def token_der(self) -> bytes:
        return bytes(tsp.TimeStampResp.load(self.response_der)["time_stamp_token"].dump())


class TimestampAuthority(Protocol):
    name: str

    def timestamp(self, digest: bytes, now: datetime) -> Timestamp: ...

    def certificates_pem(self) -> bytes: ...


def _check(response: tsp.TimeStampResp, digest: bytes, nonce: int | None, tsa: str, qualified: bool) -> Timestamp:
    status = response["status"]["status"].native
    if status not in {"granted", "granted_with_mods"}:
        raise BidprocError(Code.TIMESTAMP_UNAVAILABLE, f"{tsa} refused the request: {status}")
    info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    if info["message_imprint"]["hashed_message"].native != digest:
        raise BidprocError(Code.TIMESTAMP_INVALID, f"{tsa} timestamped another digest")
    if nonce is not None and info["nonce"].native != nonce:
        raise BidprocError(Code.TIMESTAMP_INVALID, f"{tsa} answered with another nonce")
    return Timestamp(bytes(response.dump()), info["gen_time"].native, tsa, qualified)


class LocalTSA:
    """The embedded TSA: not qualified, and every receipt says so."""

    name = "bidproc embedded local TSA (NOT QUALIFIED)"

    def __init__(self, pki: LocalPKI) -> None:
        self._pki = pki
        # Converted once: every receipt and journal anchor asks for a token, and each conversion (above
        # all parsing the RSA key) cost more than the signature itself.
        self._cert = asn1_x509.Certificate.load(pki.tsa.certificate.public_bytes(serialization.Encoding.DER))
        self._key_info = asn1_keys.PrivateKeyInfo.load(
            pki.tsa.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self._root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))

    def timestamp(self, digest: bytes, now: datetime) -> Timestamp:
        # pyhanko's in-process timestamper does the RFC 3161 signing; we set the clock, the policy and the
        # key (already loaded). A stamper per token: ``fixed_dt`` is per call and requests may run in parallel.
        stamper = _PolicyTimeStamper(tsa_cert=self._cert, tsa_key=self._key_info,
                                     certs_to_embed=[self._cert, self._root], fixed_dt=now)
        stamper.loaded_key = self._pki.tsa.key
        nonce, request = stamper.request_cms(digest, "sha256")
        return _check(stamper.request_tsa_response(request), digest, nonce, self.name, False)

    def certificates_pem(self) -> bytes:
        return self._pki.chain_pem(self._pki.tsa)


@functools.cache  # one class, made on first use (pyhanko is imported only when a token is asked for)
def _policy_stamper_class() -> Any:
    from asn1crypto import cms, core
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    class PolicyTimeStamper(DummyTimeStamper):
        loaded_key: Any = None  # the TSA's cryptography key object

        def _build_tst_info(self, message_imprint: Any, dt: datetime, req: Any) -> tsp.TSTInfo:
            info = super()._build_tst_info(message_imprint, dt, req)
            info["policy"] = tsp.ObjectIdentifier(LOCAL_TSA_POLICY)
            info["accuracy"] = tsp.Accuracy({"seconds": 1})
            return info

        def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> tuple[bytes, Any]:
            """pyhanko's own, less the key parsing: DummyTimeStamper loads its key from DER for every token,
            and cryptography checks an RSA key's consistency on each load (about 250 ms for a 3072-bit key,
            against a few ms for the signature). The signed attributes are the same as pyhanko's."""
            if md_algorithm != "sha256" or self.loaded_key is None:
                return super()._sign_tst_info(tst_info_data, md_algorithm, dt)
            attribute: Any = simple_cms_attribute  # untyped in pyhanko
            signed_attrs = cms.CMSAttributes([
                attribute("content_type", "tst_info"),
                attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                attribute("signing_certificate", as_signing_certificate(self.tsa_cert)),
                attribute("message_digest", hashlib.sha256(tst_info_data).digest()),
            ])
            signature = self.loaded_key.sign(signed_attrs.dump(), PKCS1v15(), hashes.SHA256())
            return signature, signed_attrs

    return PolicyTimeStamper


class _Lazy:
    def __call__(self, **kwargs: Any) -> Any:
        return _policy_stamper_class()(**kwargs)


_PolicyTimeStamper = _Lazy()


class RemoteTSA:
    """A TSA reached over HTTP (RFC 3161 §3.4), e.g. a qualified one in production."""

    def __init__(self, url: str, timeout_seconds: float, *, roots: tuple[bytes, ...], qualified: bool = False) -> None:
        self.name = url
        self._roots = roots
        self._url = url
        self._timeout = timeout_seconds
        self._qualified = qualified
        self._last_certs = b""

    def timestamp(self, digest: bytes, now: datetime) -> Timestamp:
        result = asyncio.run(self._timestamp(digest))
        verify_response(result.response_der, digest, self._roots)  # signature and chain, not just fields
        return result

    async def _timestamp(self, digest: bytes) -> Timestamp:
        import aiohttp
        from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
        from pyhanko.sign.timestamps.common_utils import TimestampRequestError

        async with aiohttp.ClientSession() as session:
            stamper = HTTPTimeStamper(self._url, session=session, timeout=int(self._timeout))
            nonce, request = stamper.request_cms(digest, "sha256")  # type: ignore[no-untyped-call]
            try:
                response = await stamper.async_request_tsa_response(request)
            except (TimestampRequestError, aiohttp.ClientError, OSError, ValueError) as exc:
                raise BidprocError(Code.TIMESTAMP_UNAVAILABLE, f"TSA {self._url}: {exc}") from exc
        result = _check(response, digest, nonce, self._url, self._qualified)
        certs = response["time_stamp_token"]["content"]["certificates"]
        self._last_certs = b"".join(_pem(c.chosen.dump()) for c in certs) if certs else b""
        return result

    def certificates_pem(self) -> bytes:
        return self._last_certs


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
