"""The one step applied to every signature report after validation (PAdES, CAdES, XAdES alike):
qualified status at the best signature time, QTST on timestamps, and the French rule's category point.

Never raises: a certificate or list that cannot be assessed leaves the report at ``NA`` with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from asn1crypto import x509
from pyhanko.sign.validation.qualified.tsp import QcCertType

from bidproc.errors import Warning_
from bidproc.signature.french import with_category
from bidproc.signature.report import Qualification, RuleOutcome, SignatureReport
from bidproc.signature.trust.authorities import AuthorityIndex
from bidproc.signature.trust.lists import TrustedLists
from bidproc.signature.trust.qualify import (
    CertStatus,
    cert_status,
    paths_to,
    qualification,
    timestamp_qualified,
)

log = logging.getLogger(__name__)
QUALIFIED_FOR_SIGNING = {Qualification.QESIG, Qualification.ADESIG_QC}


@dataclass(frozen=True, eq=False)
class TrustSettings:
    """What qualification depends on: the loaded lists and the buyer's accepted equivalent authorities."""

    lists: TrustedLists | None = None
    equivalent_cas: tuple[bytes, ...] = ()  # DER CA certificates


def _equivalent(cert: x509.Certificate, trust: TrustSettings, extra: list[x509.Certificate]) -> str | None:
    from pyhanko_certvalidator.authority import AuthorityWithCert

    cas = AuthorityIndex(AuthorityWithCert(x509.Certificate.load(der)) for der in trust.equivalent_cas)
    for path in paths_to(cert, cas, extra):
        return str(path.trust_anchor.authority.name.human_friendly)
    return None


def _category(
    value: Qualification, status: CertStatus | None, trust: TrustSettings, equivalent: str | None
) -> tuple[RuleOutcome, str]:
    """The certificate's category is a property of the certificate at the best signature time: a failed
    signature (``value`` NA) fails the rule on its integrity point, not on this one."""
    if value in QUALIFIED_FOR_SIGNING:
        return RuleOutcome.PASSED, f"qualified certificate under eIDAS ({value.value})"
    if status is not None and status.qualified and status.qc_type is QcCertType.QC_ESIGN:
        return RuleOutcome.PASSED, "qualified certificate for electronic signatures under eIDAS"
    if equivalent is not None:
        return RuleOutcome.PASSED, f"issued by an accepted equivalent authority: {equivalent}"
    if status is not None and status.qualified and status.qc_type is QcCertType.QC_ESEAL:
        return RuleOutcome.FAILED, "a qualified seal certificate names an organisation, not a signatory"
    if status is not None and status.qualified:
        return RuleOutcome.FAILED, "a qualified certificate for website authentication is not for signing"
    if trust.lists is None or not trust.lists.usable:
        return (
            RuleOutcome.NOT_CHECKED,
            "not checked: no usable trusted list is loaded and no equivalent authority matched",
        )
    if status is None:
        return RuleOutcome.NOT_CHECKED, "not checked: no signer certificate"
    return RuleOutcome.FAILED, "neither qualified (eIDAS trusted lists) nor issued by an accepted equivalent authority"


def assess(
    report: SignatureReport, trust: TrustSettings, validation_time: datetime, extra_certs: tuple[bytes, ...] = ()
) -> SignatureReport:
    """``report`` with its qualification, qualified timestamps and French-rule category filled in."""
    try:
        return _assess(report, trust, validation_time, extra_certs)
    except Exception as exc:  # this step must never turn a verdict into a crash
        log.warning("qualification step failed", exc_info=exc)
        return replace(report, qualification=Qualification.NA, qualification_details=(f"not assessed: {exc}",))


def _assess(
    report: SignatureReport, trust: TrustSettings, validation_time: datetime, extra_certs: tuple[bytes, ...]
) -> SignatureReport:
    der = report.signer.certificate_der if report.signer is not None else None
    at = report.best_signature_time or validation_time
    extra = [x509.Certificate.load(d) for d in extra_certs]
    status: CertStatus | None = None
    value, details = Qualification.NA, ["no signer certificate: qualification not assessed"]
    equivalent: str | None = None
    try:
        if der is not None:
            cert = x509.Certificate.load(der)
            equivalent = _equivalent(cert, trust, extra) if trust.equivalent_cas else None
            if trust.lists is not None and trust.lists.usable:
                status = cert_status(cert, trust.lists, at, extra)
                value, why = qualification(status, report.indication)
                details = [*status.reasons, f"at {at.isoformat()} (best signature time): {why} -> {value.value}"]
            else:
                details = [f"{Warning_.TRUST_NOT_ASSESSED.value}: no usable trusted list loaded"]
        stamps = tuple(
            # a token that did not validate is no qualified timestamp, whoever issued it
            replace(t, qualified=t.valid and timestamp_qualified(t.tsa_certificate, trust.lists, t.time))
            if t.tsa_certificate is not None and trust.lists is not None and trust.lists.usable
            else t
            for t in report.timestamps
        )
    except Exception as exc:  # a certificate pyhanko cannot read must not sink the report
        log.warning("qualification failed", exc_info=exc)
        value, details, stamps, status = (
            Qualification.NA,
            [f"qualification failed: {type(exc).__name__}: {exc}"],
            report.timestamps,
            None,
        )
    if trust.lists is not None:
        for s in trust.lists.lists:
            if s.problem and s.used:
                details.append(f"{Warning_.TRUST_LIST_STALE.value}: {s.kind} {s.territory} ({s.source}): {s.problem}")
            elif s.problem:
                details.append(f"{Warning_.TRUST_LIST_SKIPPED.value}: {s.kind} {s.territory} ({s.source}): {s.problem}")
    category, why = _category(value, status, trust, equivalent)
    out = replace(report, qualification=value, qualification_details=tuple(details), timestamps=stamps)
    return with_category(out, category, why)
