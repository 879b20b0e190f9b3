"""Revocation of a certificate that has expired since it signed (hand-written on top of certvalidator).

pyhanko-certvalidator checks the validity period before revocation: for a certificate expired at the
validation time it answers "out of bounds" without ever looking at revocation data, and the with-time
process then passes any signature with a proof of existence before expiry, including one made with a
key revoked (compromised) *before* that proof. EN 319 102-1 (past signature validation) needs the
status at the proof-of-existence time: this module asks for exactly that, revocation required.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from asn1crypto import x509

from bidproc.signature.policy import ValidationPolicy


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusAt:
    status: Status
    revoked_at: datetime | None = None
    detail: str = ""


async def status_at(
    cert: x509.Certificate,
    when: datetime,
    policy: ValidationPolicy,
    *,
    other_certs: list[Any],
    crls: list[Any],
    ocsps: list[Any],
    fetcher_backend: Any = None,
) -> StatusAt:
    """The signer's status at ``when`` (its best signature time), from given, embedded or fetched data."""
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, RevokedError

    context = ValidationContext(
        trust_roots=[x509.Certificate.load(der) for der in policy.trust_anchors],  # never the OS store
        other_certs=[*other_certs, *(x509.Certificate.load(der) for der in policy.extra_certificates)],
        crls=[*crls, *policy.extra_crls],
        ocsps=[*ocsps, *policy.extra_ocsps],
        moment=when,
        # Data issued after ``when`` is evidence of the status at ``when`` (a revocation lists its date).
        retroactive_revinfo=True,
        allow_fetching=not policy.offline and fetcher_backend is not None,
        revocation_mode="hard-fail",
        fetcher_backend=fetcher_backend,
    )
    try:
        await CertificateValidator(cert, validation_context=context).async_validate_usage(set())  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        return StatusAt(Status.REVOKED, getattr(exc, "revocation_dt", None), str(exc))
    except (PathBuildingError, PathValidationError, ValueError) as exc:
        return StatusAt(Status.UNKNOWN, None, str(exc))
    return StatusAt(Status.GOOD)


def expired_at(cert: x509.Certificate, moment: datetime) -> bool:
    not_after: datetime = cert["tbs_certificate"]["validity"]["not_after"].native
    return moment > not_after


def _data(knowledge: Any, signed_certs: list[Any]) -> dict[str, list[Any]]:
    """pyhanko LocalKnowledge (or None) plus the signature's certificates, as status_at's arguments."""
    return {
        "other_certs": [*signed_certs, *getattr(knowledge, "known_certs", [])],
        "crls": [c.crl_data for c in getattr(knowledge, "known_crls", [])],
        "ocsps": [o.ocsp_response_data for o in getattr(knowledge, "known_ocsps", [])],
    }


def expired_verdict(found: StatusAt, best: datetime) -> tuple[Any, Any, str] | None:
    """What an expired signer's status at ``best`` makes of a passing verdict (None: it stands)."""
    from bidproc.signature.report import Indication, SubIndication

    if found.status is Status.GOOD:
        return None
    if found.status is Status.REVOKED and found.revoked_at is not None and found.revoked_at <= best:
        return (
            Indication.TOTAL_FAILED,
            SubIndication.REVOKED,
            f"signing certificate (expired since) was revoked on {found.revoked_at.isoformat()}, "
            "before the proof of existence",
        )
    return (
        Indication.INDETERMINATE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
        f"signing certificate has expired and its status at the signature time is unknown: {found.detail}",
    )


async def recheck_expired_signer(
    indication: Any,
    sub: Any,
    cert: x509.Certificate | None,
    best: datetime | None,
    now: datetime,
    policy: ValidationPolicy,
    knowledge: Any,
    signed_certs: list[Any],
    fetcher_backend: Any,
) -> tuple[Any, Any, str | None]:
    """A passing verdict on a signer expired *now* stands only if it was not revoked at ``best``.

    ``knowledge`` is pyhanko LocalKnowledge (given and embedded certificates, CRLs, OCSPs) or None.
    Returns the (indication, sub-indication) to report and an error message when it changes.
    """
    from bidproc.signature.report import Indication

    if indication is not Indication.TOTAL_PASSED or cert is None or best is None or not expired_at(cert, now):
        return indication, sub, None
    found = await status_at(cert, best, policy, fetcher_backend=fetcher_backend, **_data(knowledge, signed_certs))
    changed = expired_verdict(found, best)
    return (indication, sub, None) if changed is None else changed


async def validation_data_gap(
    cert: x509.Certificate, when: datetime, policy: ValidationPolicy, knowledge: Any, signed_certs: list[Any]
) -> str | None:
    """Why the signature's *own* validation data does not validate its chain, or None when it does.

    B-LT means the signature carries what a verifier needs years later, offline: checked with nothing
    else (no fetching, nothing the caller gave), revocation required for every certificate.
    """
    from dataclasses import replace

    alone = replace(policy, offline=True, extra_certificates=(), extra_crls=(), extra_ocsps=())
    found = await status_at(cert, when, alone, **_data(knowledge, signed_certs))
    return None if found.status is Status.GOOD else (found.detail or found.status.value)
