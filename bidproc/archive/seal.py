"""The service's seal: a detached CMS SignedData (RFC 5652) over bytes bidproc vouches for.

pyhanko's ``SimpleSigner`` builds the CMS; ``openssl cms -verify -binary -inform DER -in X.p7s
-content X -CAfile root.pem -purpose any`` checks it without bidproc.
"""

from __future__ import annotations

import asyncio

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from bidproc.timestamps.localca import Credential, LocalPKI


class Sealer:
    def __init__(self, credential: Credential, chain: tuple[bytes, ...] = ()) -> None:
        from pyhanko.sign import signers
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
        self._signer = signers.SimpleSigner(signing_cert=cert, signing_key=key, cert_registry=registry)

    @classmethod
    def from_local_pki(cls, pki: LocalPKI) -> Sealer:
        return cls(pki.seal, (pki.root.public_bytes(serialization.Encoding.DER),))

    def seal(self, data: bytes) -> bytes:
        signed = asyncio.run(self._signer.async_sign_general_data(data, "sha256", detached=True))
        return bytes(signed.dump())
