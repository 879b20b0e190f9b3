"""Revocation data of a remote TSA's certificates, fetched when the manifest is sealed (for CAdES B-LT).

The local PKI's CRL covers the seal and the embedded TSA; a configured (remote, e.g. qualified) TSA
belongs to another PKI, whose CRLs and OCSP responses must be fetched from the addresses its
certificates give. pyhanko_certvalidator does the fetching and checks every response while it
validates the TSA certificate's path; what it fetched is what gets embedded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509 as asn1_x509

from bidproc.archive.seal import Revocation
from bidproc.errors import BidprocError, Code


def _is_tsa(cert: asn1_x509.Certificate) -> bool:
    eku = cert.extended_key_usage_value
    return eku is not None and "time_stamping" in eku.native


def fetch_revocation(certs: Sequence[asn1_x509.Certificate], roots: Sequence[bytes], now: datetime) -> Revocation:
    """CRLs and OCSP responses for every TSA certificate among ``certs`` that chains to ``roots``.

    A TSA whose status cannot be established now is an outage (``timestamp.unavailable``): the package
    waits and is sealed again later, never sealed as B-LT without the data.
    """
    return asyncio.run(_fetch(certs, roots, now))


async def _fetch(certs: Sequence[asn1_x509.Certificate], roots: Sequence[bytes], now: datetime) -> Revocation:
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, ValidationError

    anchors = [asn1_x509.Certificate.load(r) for r in roots]
    anchor_keys = {a.public_key.dump() for a in anchors}
    crls: list[bytes] = []
    ocsps: list[bytes] = []
    for cert in certs:
        if not _is_tsa(cert) or cert.public_key.dump() in anchor_keys:
            continue
        vc = ValidationContext(trust_roots=anchors, other_certs=list(certs), moment=now, allow_fetching=True,
                               revocation_mode="require")
        validator = CertificateValidator(cert, list(certs), validation_context=vc)
        try:
            await validator.async_validate_usage(  # type: ignore[no-untyped-call]
                {"digital_signature"}, {"time_stamping"})
        except (PathBuildingError, PathValidationError, ValidationError) as exc:
            raise BidprocError(Code.TIMESTAMP_UNAVAILABLE,
                               f"revocation data for TSA {cert.subject.human_friendly}: {exc}") from exc
        crls += [bytes(c.dump()) for c in vc.crls]
        ocsps += [bytes(o.dump()) for o in vc.ocsps]
    return Revocation(crls=tuple(crls), ocsps=tuple(ocsps))
