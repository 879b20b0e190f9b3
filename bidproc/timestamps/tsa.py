"""RFC 3161: get a timestamp response for a digest, from a configured TSA or the embedded one.

The HTTP client is pyhanko's ``HTTPTimeStamper`` with our own aiohttp session; the embedded TSA signs
with pyhanko's timestamper machinery under the local PKI's TSA certificate. Either way the response is
checked (status granted, our digest, our nonce) before anyone relies on it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
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

    def timestamp(self, digest: bytes, now: datetime, algorithm: str = "sha256") -> Timestamp:
        """A response over ``digest``, computed with ``algorithm`` (sha256 everywhere but in evidence
        records renewed to a stronger hash)."""
        ...

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
        # Converted once: the certificates and the key in asn1crypto's form, for pyhanko.
        self._cert = asn1_x509.Certificate.load(pki.tsa.certificate.public_bytes(serialization.Encoding.DER))
        self._key = asn1_keys.PrivateKeyInfo.load(
            pki.tsa.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self._root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))

    def timestamp(self, digest: bytes, now: datetime, algorithm: str = "sha256") -> Timestamp:
        # pyhanko's in-process timestamper does the RFC 3161 signing; we set the clock and the policy.
        # One stamper per token (the clock is the stamper's), all signing with the key loaded once.
        stamper = _PolicyTimeStamper(tsa_cert=self._cert, tsa_key=self._key, certs_to_embed=[self._cert, self._root],
                                     fixed_dt=now, loaded_key=self._pki.tsa.key)
        nonce, request = stamper.request_cms(digest, algorithm)
        return _check(stamper.request_tsa_response(request), digest, nonce, self.name, False)

    def certificates_pem(self) -> bytes:
        return self._pki.chain_pem(self._pki.tsa)


@functools.cache  # one class, made on first use (pyhanko is imported only when a token is asked for)
def _policy_stamper_class() -> Any:
    from asn1crypto import cms, core
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from pyhanko.sign import general
    from pyhanko.sign.general import simple_cms_attribute
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.util import get_pyca_cryptography_hash

    class PolicyTimeStamper(DummyTimeStamper):
        def __init__(self, *, loaded_key: RSAPrivateKey | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._loaded = loaded_key

        def _build_tst_info(self, message_imprint: Any, dt: datetime, req: Any) -> tsp.TSTInfo:
            info = super()._build_tst_info(message_imprint, dt, req)
            info["policy"] = tsp.ObjectIdentifier(LOCAL_TSA_POLICY)
            info["accuracy"] = tsp.Accuracy({"seconds": 1})
            return info

        def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> tuple[bytes, Any]:
            """pyhanko's, signing with the key loaded once: pyhanko re-parses the DER key for every token,
            and cryptography checks an RSA key's consistency on each load (~200 ms for 3072 bits, against
            ~2 ms for the signature). Same signed attributes as pyhanko 0.x's DummyTimeStamper."""
            if self._loaded is None:  # no key object given: pyhanko's own path
                return super()._sign_tst_info(tst_info_data, md_algorithm, dt)
            md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
            md.update(tst_info_data)
            attribute: Callable[[str, Any], Any] = simple_cms_attribute  # untyped in pyhanko
            signed_attrs = cms.CMSAttributes([
                attribute("content_type", "tst_info"),
                attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
                attribute("message_digest", md.finalize()),
            ])
            signature = self._loaded.sign(signed_attrs.dump(), PKCS1v15(),
                                          get_pyca_cryptography_hash(md_algorithm.upper()))
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

    def timestamp(self, digest: bytes, now: datetime, algorithm: str = "sha256") -> Timestamp:
        result = asyncio.run(self._timestamp(digest, algorithm))
        # signature and chain, not just fields
        verify_response(result.response_der, digest, self._roots, algorithm=algorithm)
        return result

    async def _timestamp(self, digest: bytes, algorithm: str) -> Timestamp:
        import aiohttp
        from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
        from pyhanko.sign.timestamps.common_utils import TimestampRequestError

        async with aiohttp.ClientSession() as session:
            stamper = HTTPTimeStamper(self._url, session=session, timeout=int(self._timeout))
            nonce, request = stamper.request_cms(digest, algorithm)  # type: ignore[no-untyped-call]
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
