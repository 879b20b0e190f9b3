"""The EN 319 102-1 decision after pyhanko's validation, one step shared by PAdES and CAdES.

pyhanko's AdES process answers first (``ades_basic_validation``, ``ades_with_time_validation`` or the
LTA process); what it leaves open is decided here, in this order, for both formats:

1. :func:`outcome.refine`: TRY_LATER for revocation data that could not be had, REVOKED when the proof of
   existence is not before the revocation, expired signers without a proof of existence before expiry;
2. :func:`expiry.recheck_expired_signer`: the status of a signer expired since, at its proof of
   existence; a TRY_LATER whose own revocation data shows the signer revoked;
3. the timestamp order (EN 319 102-1 §5.5.4): a content timestamp that validates, later than the proof of
   existence, is INDETERMINATE/TIMESTAMP_ORDER_FAILURE (:func:`_content_timestamp_after`; pyhanko reads
   content timestamps only for a signer revoked or expired without proof of existence);
4. the B-LT level: reported only when the signature's *own* validation data validates its chain
   (:func:`expiry.validation_data_gap`, a second certvalidator run at the proof of existence), else B-T.

The gap run (4) is skipped when the main validation already answered its question (:func:`_proven_by_main`):
offline, with nothing but the signature's own data, the chain validated directly at the validation time
(no revocation or expiry rescued by the time logic), and every certificate at hand valid from the proof of
existence to the validation time. The gap run would then find the same path, valid at the earlier time,
and the same revocation data, usable then (it is read retroactively, and was fresh at the later time).

What stays with each format: gathering the evidence (which process, which data, the best signature time)
and the format's own gates after the decision (PDF modifications and byte ranges, CAdES archive timestamps).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from asn1crypto import cms, x509
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import ades, generic_cms
from pyhanko.sign.validation.policy_decl import LocalKnowledge

from bidproc.errors import Warning_
from bidproc.signature.context import Context
from bidproc.signature.expiry import recheck_expired_signer, validation_data_gap
from bidproc.signature.outcome import indication_of, path_errors, refine
from bidproc.signature.report import Indication, Level, SubIndication


@dataclass(frozen=True)
class Evidence:
    """What validation gathered about one signature, as the decision reads it.

    ``result``: pyhanko's AdES result; ``level``: what the signature's material claims (None: a PDF
    document timestamp, which has no level); ``proven``: the earliest proof of existence (a timestamp or
    the deposit; None for B-B without a deposit: "now" proves nothing); ``signer_cert``: None when there is
    no signer to recheck; ``knowledge``: all validation data validation had (the recheck reads it);
    ``own_data``: the signature's own validation data alone (the B-LT question); ``signed_certs``: the
    certificates the CMS carries; ``seen``: certificate-path exceptions pyhanko swallowed;
    ``signer_info``: the SignerInfo, whose content timestamps (signed attributes) the order check reads.
    """

    result: Any
    level: Level | None
    proven: datetime | None
    signer_cert: x509.Certificate | None
    knowledge: LocalKnowledge | None
    own_data: LocalKnowledge | None
    signed_certs: list[x509.Certificate]
    seen: list[BaseException]
    signer_info: cms.SignerInfo | None = None


@dataclass(frozen=True)
class Decision:
    indication: Indication
    subindication: SubIndication | None
    level: Level | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


async def decide(ev: Evidence, ctx: Context) -> Decision:
    """Steps 1-4 of the module docstring. A TOTAL_FAILED signature keeps the level it claims (its data
    may well be complete: it is what shows the failure); any other is B-LT only on its own data."""
    indication, sub = indication_of(ev.result.ades_subindic)
    status = ev.result.api_status
    not_before = getattr(ev.result, "signature_not_before_time", None)
    indication, sub = refine(indication, sub, status, ev.proven, not_before, ev.seen)
    indication, sub, expiry_error = await recheck_expired_signer(
        indication,
        sub,
        ev.signer_cert,
        ev.proven,
        ctx.now,
        ctx.policy,
        ev.knowledge,
        ev.signed_certs,
        ctx.spec.revinfo_gathering_policy.fetcher_backend,
    )
    errors = (expiry_error,) if expiry_error else ()
    level = ev.level
    if indication is Indication.TOTAL_PASSED and ev.proven is not None and ev.signer_info is not None:
        late = await _content_timestamp_after(ev.signer_info, ev.proven, ev.knowledge, ctx)
        if late is not None:
            order = f"content timestamp of {late.isoformat()} is later than the proof of existence of the signature"
            order += f" ({ev.proven.isoformat()}): one of the timestamps is wrong about the time"
            return Decision(Indication.INDETERMINATE, SubIndication.TIMESTAMP_ORDER_FAILURE, level, (*errors, order))
    if level is Level.B_LT and indication is not Indication.TOTAL_FAILED and ev.signer_cert is not None:
        passed = indication is Indication.TOTAL_PASSED
        when = ev.proven or ctx.now
        gap = None
        if not (passed and _proven_by_main(ev, status, when, ctx)):
            gap = await validation_data_gap(ev.signer_cert, when, ctx.policy, ev.own_data, ev.signed_certs)
        if gap:
            code = Warning_.SIGNATURE_VALIDATION_DATA_INCOMPLETE.value
            return Decision(indication, sub, Level.B_T, errors, (f"{code}: {gap}: level B-T, not B-LT",))
    return Decision(indication, sub, level, errors)


async def _content_timestamp_after(
    si: cms.SignerInfo, proven: datetime, knowledge: LocalKnowledge | None, ctx: Context
) -> datetime | None:
    """The latest time of a content timestamp that validates, if later than ``proven``; None otherwise.

    A content timestamp is a signed attribute: the signer had it before signing, so no proof of existence
    of the signature can be earlier. One that does not validate proves nothing and is ignored (§5.5.4).
    Its imprint is the signed content's digest: the messageDigest attribute, which the signature's own
    validation checked against the content (as pyhanko does for its content timestamp check).
    """
    tokens = list(generic_cms.extract_tst_data_iter(si, signed=True))
    if not tokens:
        return None
    spec = ctx.spec if knowledge is None else replace(ctx.spec, local_knowledge=knowledge)
    digest_algorithm = si["digest_algorithm"]["algorithm"].native
    message_digest = find_unique_cms_attribute(si["signed_attrs"], "message_digest").native

    def imprint(algorithm: str) -> bytes:
        if algorithm != digest_algorithm:
            raise ValueError(f"content timestamp over {algorithm}, signature digest {digest_algorithm}")
        return bytes(message_digest)

    latest: datetime | None = None
    for token in tokens:
        try:
            with path_errors():  # its certificate-path exceptions are this check's, not the signature's
                result = await ades.ades_timestamp_validation(token, spec, imprint, timing_info=ctx.timing())
        except Exception:  # noqa: S112 - a timestamp that cannot be validated proves nothing
            continue
        status = result.api_status
        if isinstance(result.ades_subindic, AdESPassed) and status is not None:
            latest = status.timestamp if latest is None else max(latest, status.timestamp)
    return latest if latest is not None and latest > proven else None


def _proven_by_main(ev: Evidence, status: Any, when: datetime, ctx: Context) -> bool:
    """Whether the passed main validation already proves the signature's own data validates its chain at
    ``when`` (module docstring), so the gap run can only agree. Conservative: any doubt runs it."""
    policy = ctx.policy
    if not policy.offline or policy.extra_certificates or policy.extra_crls or policy.extra_ocsps:
        return False  # the main validation had more than the signature's own data
    path = getattr(status, "validation_path", None)
    if when > ctx.now or path is None or getattr(status, "revocation_details", None) is not None:
        return False  # a revocation the time logic rescued, or nothing to read the path from
    try:
        certs = [*_certificates(ev, path)]
        return all(c.not_valid_before <= when and ctx.now <= c.not_valid_after for c in certs)
    except (ValueError, TypeError, KeyError, AttributeError):  # anything unreadable: ask certvalidator
        return False


def _certificates(ev: Evidence, path: Any) -> Iterator[x509.Certificate]:
    """Every certificate either run could use: the path, the CMS's, the own data's, the OCSP responders'.
    Valid over [proof of existence, now], no certificate can be judged otherwise at the earlier time."""
    yield from path.iter_certs(include_root=True)
    yield from ev.signed_certs
    own = ev.own_data
    if own is None:
        return
    yield from own.known_certs
    for container in own.known_ocsps:
        basic = container.ocsp_response_data["response_bytes"]["response"].parsed
        yield from (c for c in basic["certs"] or [])
