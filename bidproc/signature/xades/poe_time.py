"""EN 319 102-1 §5.5 time logic for XAdES: the certificate verdict once proofs of existence are known.

Hand-written because pyhanko's ``ades_with_time_validation`` does exactly this but only for CMS
signatures; the rules below mirror it (and say where bidproc goes further).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.generic_cms import CertvalidatorOperationResult, handle_certvalidator_errors
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext, find_valid_path
from pyhanko_certvalidator.errors import InsufficientRevinfoError, StaleRevinfoError
from pyhanko_certvalidator.path import ValidationPath

from bidproc.errors import Warning_
from bidproc.signature.expiry import signer_revoked_at
from bidproc.signature.outcome import revoked_verdict
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, RuleOutcome, SubIndication

# A signing certificate is accepted for either key usage: French qualified signature certificates carry
# nonRepudiation, many seal and "signature" certificates only digitalSignature.
SIGNER_KEY_USAGE = KeyUsageConstraints(key_usage={"non_repudiation", "digital_signature"})


_WHY = {
    "NO_CERTIFICATE_CHAIN_FOUND": "signing certificate does not chain to a trust anchor",
    "TRY_LATER": "revocation status of the signing certificate could not be obtained (source unreachable): try later",
    "CHAIN_CONSTRAINTS_FAILURE": "signing certificate not acceptable (key usage or chain constraints)",
    "REVOKED_CA_NO_POE": "a CA certificate of the chain is revoked",
}


class _RevocationUnavailable(Exception):
    pass


async def validate_signer_certificate(
    cert: asn1_x509.Certificate, context: ValidationContext
) -> CertvalidatorOperationResult[ValidationPath]:
    """pyhanko's ``validate_cert_usage``, except that unreachable revocation sources give TRY_LATER.

    pyhanko files "no revocation information could be obtained" under CERTIFICATE_CHAIN_GENERAL_FAILURE;
    EN 319 102-1 has TRY_LATER for exactly that (the OCSP responder or CRL server is down: ask again later),
    and the legal team must be able to tell "broken chain" from "come back later".
    """

    async def check() -> ValidationPath:
        paths = context.path_builder.async_build_paths_lazy(cert)
        try:
            path: ValidationPath = await find_valid_path(cert, paths, validation_context=context)
        except InsufficientRevinfoError as exc:
            if isinstance(exc, StaleRevinfoError):
                raise  # pyhanko already maps stale revocation data to TRY_LATER
            raise _RevocationUnavailable(exc.failure_msg) from exc
        if path.pkix_len > 0:  # as pyhanko: a signer certificate that is itself an anchor is trusted as is
            SIGNER_KEY_USAGE.validate(cert)
        return path

    try:
        return await handle_certvalidator_errors(cert=cert, coro=check())
    except _RevocationUnavailable:
        return CertvalidatorOperationResult(success_result=None, error_subindic=AdESIndeterminate.TRY_LATER)


REVOKED_AFTER = Warning_.CERTIFICATE_REVOKED_AFTER_SIGNING.value
EXPIRED_AFTER = Warning_.CERTIFICATE_EXPIRED_AFTER_SIGNING.value


NOT_YET_VALID = (Indication.TOTAL_FAILED, SubIndication.NOT_YET_VALID, "signed before the certificate was valid")


@dataclass(frozen=True)
class Chain:
    outcome: tuple[Indication, SubIndication | None, str] | None
    french: RuleOutcome
    warnings: tuple[str, ...] = ()


def _issuance_decides(op: Any, best: datetime) -> bool:
    """Whether a proof of existence before notBefore makes it FAILED/NOT_YET_VALID (EN 319 102-1 §5.5.4
    4)a)i, 4)b)): a passing chain, or one revoked only after ``best``; OUT_OF_BOUNDS is judged in place."""
    sub = op.error_subindic
    if sub is None:
        return True
    details = op.revo_details
    return bool(sub.name == "REVOKED_NO_POE" and details is not None and best < details.revocation_date)


def judge_chain(op: Any, cert: x509.Certificate, best: datetime | None, claimed: datetime | None) -> Chain:
    """EN 319 102-1 §5.5.4 on certvalidator's result, as pyhanko's ``ades_with_time_validation`` does it.

    ``best`` is the best signature time (a proof of existence), ``claimed`` the signer's SigningTime; a claim
    is no proof, but a signer who claims to have signed after expiry or revocation cannot pass either.
    """
    sub = op.error_subindic
    if best is not None and best < cert.not_valid_before_utc and _issuance_decides(op, best):
        return Chain(NOT_YET_VALID, RuleOutcome.FAILED)
    if sub is None:
        return Chain(None, RuleOutcome.PASSED)
    name = sub.name
    if name == "REVOKED_NO_POE" and op.revo_details is not None:
        revoked = op.revo_details.revocation_date
        if best is not None and best < revoked:
            return Chain(
                None, RuleOutcome.PASSED, (f"{REVOKED_AFTER}: revoked {revoked.isoformat()}",)
            )
        if best is not None and best >= revoked:
            why = f"signing certificate revoked on {revoked.isoformat()}, before the signature time"
            return Chain((Indication.TOTAL_FAILED, SubIndication.REVOKED, why), RuleOutcome.FAILED)
        # No proof the signature existed before the revocation: EN 319 102-1 says REVOKED_NO_POE (as PAdES
        # and CAdES do), and the French rule fails, as in french.CERT_FAILED: the certificate cannot be
        # shown valid at signing time (a claimed signing time proves nothing).
        return Chain(
            (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE, "revoked, no proof of existence before"),
            RuleOutcome.FAILED,
        )
    if name == "OUT_OF_BOUNDS_NO_POE":
        before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
        if best is not None:
            if best < before:
                return Chain(NOT_YET_VALID, RuleOutcome.FAILED)
            if best <= after:  # like pyhanko: revocation of an expired certificate cannot be checked any more
                return Chain(
                    None, RuleOutcome.PASSED, (f"{EXPIRED_AFTER}: expired {after.isoformat()}",)
                )
            # A signature timestamp is an upper bound on the signing time, not a lower one: EXPIRED needs a
            # proof the signature was made after expiry (a content timestamp); here it is OUT_OF_BOUNDS_NO_POE.
            why = (
                f"signing certificate expired on {after.isoformat()}, before the proof of existence {best.isoformat()}"
            )
            return Chain((Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE, why), RuleOutcome.FAILED)
        french = RuleOutcome.FAILED if claimed is None or claimed > after else RuleOutcome.NOT_CHECKED
        why = f"signing certificate expired on {after.isoformat()} and no proof of existence before that"
        return Chain((Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE, why), french)
    indication = Indication.TOTAL_FAILED if sub.status.name == "FAILED" else Indication.INDETERMINATE
    mapped = SubIndication.__members__.get(name, SubIndication.GENERIC)
    why = _WHY.get(name, f"signing certificate: {name}")
    failed = name == "NO_CERTIFICATE_CHAIN_FOUND" or indication is Indication.TOTAL_FAILED
    return Chain((indication, mapped, why), RuleOutcome.FAILED if failed else RuleOutcome.NOT_CHECKED)


async def decide_unknown_status(
    chain: Chain,
    cert: asn1_x509.Certificate,
    best: datetime | None,
    claimed: datetime | None,
    now: datetime,
    policy: ValidationPolicy,
    *,
    other_certs: list[Any],
    crls: list[Any],
    ocsps: list[Any],
    fetcher_backend: Any = None,
) -> Chain:
    """TRY_LATER because the chain's status is incomplete, while the data at hand shows the *signer*
    revoked: EN 319 102-1 decides on that (REVOKED_NO_POE or REVOKED), as PAdES and CAdES do through
    :func:`bidproc.signature.outcome.revoked_verdict`; otherwise the chain's verdict stands."""
    if chain.outcome is None or chain.outcome[1] is not SubIndication.TRY_LATER or not policy.trust_anchors:
        return chain
    revoked = await signer_revoked_at(
        cert, now, policy, other_certs=other_certs, crls=crls, ocsps=ocsps, fetcher_backend=fetcher_backend
    )
    decided = revoked_verdict(revoked, best) if revoked is not None else None
    if revoked is None or decided is None:
        return chain
    why = f"signing certificate revoked on {revoked.isoformat()}, no proof of existence before"
    return Chain((*decided, why), RuleOutcome.FAILED)  # as in judge_chain and french.CERT_FAILED
