"""The service's seal: a detached CMS SignedData (RFC 5652) over bytes bidproc vouches for.

pyhanko's ``SimpleSigner`` builds the CMS; ``openssl cms -verify -binary -inform DER -in X.p7s
-content X -CAfile root.pem -purpose any`` checks it without bidproc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bidproc.timestamps.localca import Credential, LocalPKI


class Sealer:
    def __init__(self, credential: Credential, chain: tuple[bytes, ...] = ()) -> None:
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        cert = asn1_x509.Certificate.load(credential.certificate.public_bytes(serialization.Encoding.DER))
        key = asn1_keys.PrivateKeyInfo.load(
            credential.key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        registry = SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1_x509.Certificate.load(c) for c in chain]
        )
        self._signer = _signer_class()(credential.key, signing_cert=cert, signing_key=key, cert_registry=registry)

    @classmethod
    def from_local_pki(cls, pki: LocalPKI) -> Sealer:
        return cls(pki.seal, (pki.root.public_bytes(serialization.Encoding.DER),))

    def seal(self, data: bytes, timestamp: Callable[[bytes], bytes] | None = None,
             revocation: Callable[[Sequence[asn1_x509.Certificate]], Revocation] | None = None) -> bytes:
        """Detached CMS over ``data``; with ``timestamp`` (SHA-256 digest -> TimeStampResp DER), a CAdES
        signature with its signature-time-stamp token (B-T); with ``revocation`` too, the revocation data
        of the seal's and the timestamp's certificates embedded (B-LT, EN 319 122-1 §5.5.1): ``revocation``
        gets every certificate the signature and its timestamp carry and returns their CRLs/OCSP responses."""
        stamper = _stamper_class()(timestamp) if timestamp else None
        signed = asyncio.run(self._signer.async_sign_general_data(
            data, "sha256", detached=True, use_cades=timestamp is not None, timestamper=stamper))
        if revocation is not None:
            embed_validation_data(signed["content"], revocation)
        return bytes(signed.dump())


@dataclass(frozen=True)
class Revocation:
    """Revocation data to embed: CRLs (CertificateList DER) and OCSP responses (OCSPResponse DER)."""

    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()

    def __add__(self, other: Revocation) -> Revocation:
        return Revocation(self.crls + other.crls, self.ocsps + other.ocsps)


def embed_validation_data(
    sd: cms.SignedData, revocation: Callable[[Sequence[asn1_x509.Certificate]], Revocation]
) -> None:
    """EN 319 122-1 B-LT: every certificate and revocation value needed to validate the signature and its
    timestamp, in ``SignedData.certificates`` and ``SignedData.crls`` (outside the signed attributes:
    adding them after signing changes no signed byte). CRLs as CertificateList; OCSP responses as
    OtherRevocationInfoFormat with id-ri-ocsp-response (RFC 5940 §3). The timestamp tokens' certificates
    are copied up beside the seal's."""
    certs = [c.chosen for c in sd["certificates"]] if not isinstance(sd["certificates"], core.Void) else []
    seen = {c.dump() for c in certs}
    for attr in [] if isinstance(sd["signer_infos"][0]["unsigned_attrs"], core.Void) else \
            sd["signer_infos"][0]["unsigned_attrs"]:
        if attr["type"].native != "signature_time_stamp_token":
            continue
        for token in attr["values"]:
            for choice in token["content"]["certificates"]:
                if choice.name == "certificate" and choice.chosen.dump() not in seen:
                    seen.add(choice.chosen.dump())
                    certs.append(choice.chosen)
    sd["certificates"] = cms.CertificateSet([cms.CertificateChoices("certificate", c) for c in certs])
    found = revocation(certs)
    choices = [cms.RevocationInfoChoice("crl", asn1_crl.CertificateList.load(der))
               for der in dict.fromkeys(found.crls)]
    choices += [cms.RevocationInfoChoice("other", cms.OtherRevocationInfoFormat(
        {"other_rev_info_format": "ocsp_response", "other_rev_info": asn1_ocsp.OCSPResponse.load(der)}))
        for der in dict.fromkeys(found.ocsps)]
    if choices:
        sd["crls"] = cms.RevocationInfoChoices(choices)


def _stamper_class() -> Any:
    """A pyhanko TimeStamper backed by the service's own TSA interface (SHA-256 imprints)."""
    from asn1crypto import tsp
    from pyhanko.sign.timestamps.api import TimeStamper

    class ServiceStamper(TimeStamper):
        def __init__(self, timestamp: Callable[[bytes], bytes]) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self._timestamp = timestamp

        async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
            if md_algorithm.lower() != "sha256":
                raise ValueError(f"the service TSA takes SHA-256 imprints, not {md_algorithm}")
            # A remote TSA runs an event loop of its own: keep it off this one.
            response = await asyncio.to_thread(self._timestamp, message_digest)
            return tsp.TimeStampResp.load(response)["time_stamp_token"]

    return ServiceStamper


def _signer_class() -> Any:
    """pyhanko's SimpleSigner, signing with a key loaded once.

    SimpleSigner re-parses its private key for every signature, and cryptography checks an RSA key's
    consistency on each load: about 100 ms per seal for a 3072-bit key against 1 ms for the signature
    itself. Only the PKCS#1 v1.5 case our seal uses is short-cut; anything else goes to pyhanko.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from pyhanko.sign import signers

    digests: dict[str, type[hashes.HashAlgorithm]] = {
        "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}

    class LoadedKeySigner(signers.SimpleSigner):
        def __init__(self, loaded: RSAPrivateKey, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._loaded = loaded

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            if mechanism["algorithm"].native != "sha256_rsa" or digest_algorithm not in digests:
                return bytes(super().sign_raw(data, digest_algorithm))
            return self._loaded.sign(data, PKCS1v15(), digests[digest_algorithm]())

    return LoadedKeySigner
