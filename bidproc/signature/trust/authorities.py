"""Listed authorities indexed by subject name, and the issuer check (names and signature).

Apart from :mod:`bidproc.signature.trust.qualify` so that the trusted lists can build their indexes
without importing the qualification logic that reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from asn1crypto import x509
from cryptography import x509 as cx509
from pyhanko_certvalidator.authority import Authority, AuthorityWithCert


@lru_cache(maxsize=4096)
def _verifies(cert_der: bytes, issuer_der: bytes) -> bool:
    """The issuer's key verifies the certificate's signature (cached: a bid's signers repeat)."""
    try:
        cx509.load_der_x509_certificate(cert_der).verify_directly_issued_by(cx509.load_der_x509_certificate(issuer_der))
    except Exception:  # InvalidSignature, unsupported key or malformed certificate: not issued by it
        return False
    return True


@lru_cache(maxsize=8192)
def _name_key_of(der: bytes) -> str:
    return str(x509.Name.load(der).hashable)


def _name_key(name: x509.Name) -> str:
    """RFC 5280 name comparison key (asn1crypto's ``hashable``: normalised, and slow: cached by DER)."""
    return _name_key_of(name.dump())


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Names match and the issuer's key verifies the certificate's signature."""
    return _name_key(cert.issuer) == _name_key(issuer.subject) and _verifies(cert.dump(), issuer.dump())


class AuthorityIndex:
    """Listed authorities by subject name, so a lookup is one dict access instead of a scan."""

    def __init__(self, authorities: Iterable[Authority]) -> None:
        self.by_subject: dict[str, list[AuthorityWithCert]] = {}
        for auth in authorities:
            if isinstance(auth, AuthorityWithCert):
                self.by_subject.setdefault(_name_key(auth.certificate.subject), []).append(auth)

    def issuers_of(self, cert: x509.Certificate) -> list[AuthorityWithCert]:
        return [a for a in self.by_subject.get(_name_key(cert.issuer), ()) if _issued_by(cert, a.certificate)]
