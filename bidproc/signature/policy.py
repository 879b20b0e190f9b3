"""Validation policy as data (after pyhanko's ``policy_decl.py``): what a validation may trust and fetch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bidproc.signature.trust.assess import TrustSettings


@dataclass(frozen=True)
class ValidationPolicy:
    """Everything a signature validation depends on besides the signed bytes.

    ``trust_anchors`` are DER certificates; with none, nothing chains to a trusted root and the best
    possible outcome is INDETERMINATE/NO_CERTIFICATE_CHAIN_FOUND (the OS trust store is never used).
    ``at`` is the validation time (``None``: now, read once by the caller and passed down).
    ``offline`` forbids every network fetch: only revocation data embedded in the signature or given in
    ``extra_crls``/``extra_ocsps`` counts.
    ``proofs_of_existence`` are (sha256 of signed content, time) pairs proven elsewhere, e.g. by the
    deposit receipt's RFC 3161 timestamp: they count towards the best signature time.
    ``trust`` holds the loaded EU trusted lists and the accepted equivalent authorities: the qualified
    CA services of the usable lists are trust anchors too, and every report gets its qualification.
    """

    trust_anchors: tuple[bytes, ...] = ()
    extra_certificates: tuple[bytes, ...] = ()
    extra_crls: tuple[bytes, ...] = ()
    extra_ocsps: tuple[bytes, ...] = ()
    at: datetime | None = None
    offline: bool = False
    fetch_timeout_seconds: float = 10.0
    max_xml_bytes: int = 50 * 1024 * 1024
    max_xml_depth: int = 256
    proofs_of_existence: tuple[tuple[str, datetime], ...] = ()
    trust: TrustSettings = field(default_factory=TrustSettings)

    def __post_init__(self) -> None:
        # A naive time would be compared with aware ones deep inside validation: refuse it here.
        times = [self.at] if self.at is not None else []
        times += [when for _, when in self.proofs_of_existence]
        if any(t.tzinfo is None or t.utcoffset() is None for t in times):
            raise ValueError("validation times must carry a time zone (use UTC)")
