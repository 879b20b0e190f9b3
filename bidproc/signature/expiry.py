"""Signer status questions pyhanko's AdES processes leave open (hand-written on top of certvalidator).

1. A certificate that has expired since it signed. pyhanko-certvalidator checks the validity period
   before revocation: for a certificate expired at the validation time it answers "out of bounds"
   without ever looking at revocation data, and the with-time process then passes any signature with a
   proof of existence before expiry, including one made with a key revoked (compromised) *before* that
   proof. EN 319 102-1 (past signature validation) needs the status at the proof-of-existence time:
   :func:`status_at` asks for exactly that, revocation required.
2. A signer whose own revocation data says REVOKED while a CA's status is missing. certvalidator checks
   the path from the anchor down and stops at the first CA without revocation data, so the answer is
   TRY_LATER, as if nothing were known. EN 319 102-1 §5.2.6 decides on the signing certificate's
   revocation: REVOKED_NO_POE without a proof of existence before it. :func:`signer_revoked_at` asks
   certvalidator for the signer's status alone (CA revocation not required); it can only turn an
   INDETERMINATE into REVOKED_NO_POE or TOTAL_FAILED, never into a pass.
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


def _context_at(
    when: datetime,
    policy: ValidationPolicy,
    other_certs: list[Any],
    crls: list[Any],
    ocsps: list[Any],
    fetcher_backend: Any,
    **revocation: Any,
) -> Any:
    """A validation context at ``when`` over the given, embedded and policy data (``revocation``: which
    statuses are required), shared by :func:`status_at` and :func:`signer_revoked_at`."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=[x509.Certificate.load(der) for der in policy.trust_anchors],  # never the OS store
        other_certs=[*other_certs, *(x509.Certificate.load(der) for der in policy.extra_certificates)],
        crls=[*crls, *policy.extra_crls],
        ocsps=[*ocsps, *policy.extra_ocsps],
        moment=when,
        # Data issued after ``when`` is evidence of the status at ``when`` (a revocation lists its date).
        retroactive_revinfo=True,
        allow_fetching=not policy.offline and fetcher_backend is not None,
        fetcher_backend=fetcher_backend,
        **revocation,
    )


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
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError, RevokedError

    context = _context_at(when, policy, other_certs, crls, ocsps, fetcher_backend, revocation_mode="hard-fail")
    try:
        await CertificateValidator(cert, validation_context=context).async_validate_usage(set())  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        return StatusAt(Status.REVOKED, getattr(exc, "revocation_dt", None), str(exc))
    except (PathBuildingError, PathValidationError, ValueError) as exc:
        return StatusAt(Status.UNKNOWN, None, str(exc))
    return StatusAt(Status.GOOD)


async def signer_revoked_at(
    cert: x509.Certificate,
    when: datetime,
    policy: ValidationPolicy,
    *,
    other_certs: list[Any],
    crls: list[Any],
    ocsps: list[Any],
    fetcher_backend: Any = None,
) -> datetime | None:
    """When the signer's certificate was revoked, if the data at hand says it was (by ``when``).

    The data is still verified by certvalidator (the OCSP responder or CRL issuer must chain to an
    anchor); only the revocation status of the CAs is not required.
    """
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import RevokedError
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    signer_only = CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
            intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
        )
    )
    context = _context_at(when, policy, other_certs, crls, ocsps, fetcher_backend, revinfo_policy=signer_only)
    try:
        await CertificateValidator(cert, validation_context=context).async_validate_usage(set())  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        revoked: datetime | None = getattr(exc, "revocation_dt", None)
        return revoked
    except Exception:  # any other outcome (path, data, parse): nothing shows the signer revoked
        return None
    return None


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
    """Rechecks of the signer (module docstring): a passing verdict on a signer expired *now* stands only
    if it was not revoked at ``best``; a TRY_LATER whose data shows the signer revoked is decided by
    that revocation (:func:`outcome.revoked_verdict`).

    ``knowledge`` is pyhanko LocalKnowledge (given and embedded certificates, CRLs, OCSPs) or None.
    Returns the (indication, sub-indication) to report and an error message when it changes.
    """
    from bidproc.signature.outcome import revoked_verdict
    from bidproc.signature.report import Indication, SubIndication

    if indication is Indication.INDETERMINATE and sub is SubIndication.TRY_LATER and cert is not None:
        data = _data(knowledge, signed_certs)
        can_fetch = not policy.offline and fetcher_backend is not None
        if not (data["crls"] or data["ocsps"] or policy.extra_crls or policy.extra_ocsps or can_fetch):
            return indication, sub, None  # no revocation data to look at (offline B-B/B-T): nothing to learn
        revoked = await signer_revoked_at(cert, now, policy, fetcher_backend=fetcher_backend, **data)
        decided = revoked_verdict(revoked, best) if revoked is not None else None
        if revoked is not None and decided is not None:
            proof = "no proof of existence" if best is None else f"earliest proof of existence {best.isoformat()}"
            return (
                *decided,
                f"signing certificate revoked on {revoked.isoformat()} (its own revocation data); {proof}",
            )
        return indication, sub, None
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
