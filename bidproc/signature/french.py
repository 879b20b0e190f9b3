"""The French rule (arrêté of 22 March 2019, annex on signature checks) as a per-signature verdict.

The buyer must check: the format (XAdES, CAdES or PAdES), that the certificate was neither expired
nor revoked at signing time, the document's integrity and the signer's identity. The certificate's
category (qualified or equivalent) needs the EU trusted lists: ``not_checked`` until that issue lands.
"""

from __future__ import annotations

from dataclasses import replace

from bidproc.signature.report import FrenchRuleCheck, RuleOutcome, SignatureFormat, SignatureReport, SubIndication

# The certificate was shown invalid at the best signature time (or could not be shown valid then).
CERT_FAILED = {
    SubIndication.REVOKED,
    SubIndication.EXPIRED,
    SubIndication.NOT_YET_VALID,
    SubIndication.REVOKED_NO_POE,
    SubIndication.REVOKED_CA_NO_POE,
    SubIndication.OUT_OF_BOUNDS_NO_POE,
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED,
}
# Validation stopped before the certificate's status was known.
CERT_UNKNOWN = {
    SubIndication.HASH_FAILURE,
    SubIndication.SIG_CRYPTO_FAILURE,
    SubIndication.FORMAT_FAILURE,
    SubIndication.TRY_LATER,
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
    SubIndication.CHAIN_CONSTRAINTS_FAILURE,
    SubIndication.SIGNED_DATA_NOT_FOUND,
    SubIndication.GENERIC,
    SubIndication.NO_POE,
}
INTEGRITY_FAILED = {SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE, SubIndication.SIGNED_DATA_NOT_FOUND}


def french_rule(report: SignatureReport, ades_sub: SubIndication | None, intact: bool | None) -> FrenchRuleCheck:
    """``ades_sub`` is the EN 319 102-1 outcome before PDF modification gating; ``intact`` pyhanko's digest check."""
    format_ok = report.format in set(SignatureFormat) and ades_sub is not SubIndication.FORMAT_FAILURE
    fmt = RuleOutcome.PASSED if format_ok else RuleOutcome.FAILED
    if ades_sub in CERT_FAILED:
        cert = RuleOutcome.FAILED
    elif ades_sub in CERT_UNKNOWN:
        cert = RuleOutcome.NOT_CHECKED
    else:
        cert = RuleOutcome.PASSED
    changed = any(not m.allowed for m in report.modifications)
    if ades_sub in INTEGRITY_FAILED or intact is False or changed:
        integrity = RuleOutcome.FAILED
    elif intact:
        integrity = RuleOutcome.PASSED
    else:
        integrity = RuleOutcome.NOT_CHECKED
    signer = report.signer
    identity = (
        RuleOutcome.PASSED
        if signer is not None and (signer.common_name or signer.organisation)
        else (RuleOutcome.FAILED)
    )
    points = {
        "format": fmt,
        "certificate_valid_at_signing_time": cert,
        "integrity": integrity,
        "signer_identity": identity,
    }
    return FrenchRuleCheck(
        format=fmt,
        certificate_valid_at_signing_time=cert,
        integrity=integrity,
        signer_identity=identity,
        certificate_category=RuleOutcome.NOT_CHECKED,
        failed=tuple(name for name, outcome in points.items() if outcome is RuleOutcome.FAILED),
    )


def with_french_rule(report: SignatureReport, ades_sub: SubIndication | None, intact: bool | None) -> SignatureReport:
    return replace(report, french_rule=french_rule(report, ades_sub, intact))
