"""Revocation data of a remote TSA's certificates, fetched when the manifest is sealed (for CAdES B-LT).

The local PKI's CRL covers the seal and the embedded TSA; a configured (remote, e.g. qualified) TSA
belongs to another PKI, whose CRLs and OCSP responses must be fetched from the addresses its
certificates give. pyhanko_certvalidator does the fetching and checks every response while it
validates the TSA certificate's path; what it fetched is what gets embedded.

What was fetched for a TSA certificate is kept (``RevocationCache``) until the earliest nextUpdate
among its CRLs and OCSP responses: every package of a busy day embeds the same, still current, data
instead of hitting the responder once per package. Data with no nextUpdate is never kept (a newer
status may exist at any time). The cache is bounded (least recently used entries go first) and keyed
by the certificate and the trusted roots, since the roots decide which data validated.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl, ocsp
from asn1crypto import x509 as asn1_x509

from bidproc.archive.seal import Revocation
from bidproc.errors import BidprocError, Code


def _is_tsa(cert: asn1_x509.Certificate) -> bool:
    eku = cert.extended_key_usage_value
    return eku is not None and "time_stamping" in eku.native


@dataclass(frozen=True)
class _Entry:
    revocation: Revocation
    until: datetime  # the earliest nextUpdate of what it holds


class RevocationCache:
    """Fetched revocation data per TSA certificate, until its nextUpdate; at most ``size`` entries."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[bytes, bytes], _Entry] = OrderedDict()
        self._lock = threading.Lock()  # archive workers may seal from several threads

    def get(self, key: tuple[bytes, bytes], now: datetime) -> Revocation | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now >= entry.until:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry.revocation

    def put(self, key: tuple[bytes, bytes], revocation: Revocation, now: datetime) -> None:
        until = next_update(revocation)
        if until is None or until <= now:
            return
        with self._lock:
            self._entries[key] = _Entry(revocation, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def next_update(revocation: Revocation) -> datetime | None:
    """The earliest nextUpdate among the CRLs and OCSP responses; None if any lacks one (or none)."""
    times: list[datetime | None] = [crl.CertificateList.load(c)["tbs_cert_list"]["next_update"].native
                                    for c in revocation.crls]
    for der in revocation.ocsps:
        basic = ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed
        times += [single["next_update"].native for single in basic["tbs_response_data"]["responses"]]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


CACHE = RevocationCache()  # the process's; one per process is what "do not fetch per package" needs


def fetch_revocation(certs: Sequence[asn1_x509.Certificate], roots: Sequence[bytes], now: datetime,
                     cache: RevocationCache = CACHE) -> Revocation:
    """CRLs and OCSP responses for every TSA certificate among ``certs`` that chains to ``roots``.

    A TSA whose status cannot be established now is an outage (``timestamp.unavailable``): the package
    waits and is sealed again later, never sealed as B-LT without the data. A failure is never cached.
    """
    anchors = [asn1_x509.Certificate.load(r) for r in roots]
    anchor_keys = {a.public_key.dump() for a in anchors}
    roots_id = hashlib.sha256(b"".join(sorted(hashlib.sha256(r).digest() for r in roots))).digest()
    total = Revocation()
    for cert in certs:
        if not _is_tsa(cert) or cert.public_key.dump() in anchor_keys:
            continue
        key = (hashlib.sha256(cert.dump()).digest(), roots_id)
        found = cache.get(key, now)
        if found is None:
            found = asyncio.run(_fetch(cert, certs, anchors, now))
            cache.put(key, found, now)
        total = total + found
    return total


async def _fetch(cert: asn1_x509.Certificate, certs: Sequence[asn1_x509.Certificate],
                 anchors: list[asn1_x509.Certificate], now: datetime) -> Revocation:
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, ValidationError

    vc = ValidationContext(trust_roots=anchors, other_certs=list(certs), moment=now, allow_fetching=True,
                           revocation_mode="require")
    validator = CertificateValidator(cert, list(certs), validation_context=vc)
    try:
        await validator.async_validate_usage(  # type: ignore[no-untyped-call]
            {"digital_signature"}, {"time_stamping"})
    except (PathBuildingError, PathValidationError, ValidationError) as exc:
        raise BidprocError(Code.TIMESTAMP_UNAVAILABLE,
                           f"revocation data for TSA {cert.subject.human_friendly}: {exc}") from exc
    return Revocation(crls=tuple(bytes(c.dump()) for c in vc.crls), ocsps=tuple(bytes(o.dump()) for o in vc.ocsps))
