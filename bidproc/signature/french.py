"""The French rule (arrêté of 22 March 2019, annex on signature checks) as a per-signature verdict.

The buyer must check: the format (XAdES, CAdES or PAdES), that the certificate was neither expired
nor revoked at signing time, the document's integrity, the signer's identity and the certificate's
category: qualified under eIDAS (from the EU trusted lists) or issued by an authority the buyer accepts
as equivalent (``signature.equivalent_ca_files``). The category is set by :func:`with_category` once
the qualification step has run (``bidproc.signature.trust.assess``); without any trusted list or
equivalent authority it stays ``not_checked``, and then the rule is not ``compliant``.
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


# Each point, in words, when it failed (or could not be checked).
FAILED_WORDS = {
    "format": "the signature is not in a valid XAdES, CAdES or PAdES format",
    "certificate_valid_at_signing_time": "the certificate was expired, revoked or not yet valid at signing time",
    "integrity": "the signed document was altered, or the signature does not match it",
    "signer_identity": "the certificate does not name the signatory (no common name nor organisation)",
}
UNCHECKED_WORDS = {
    "format": "the format could not be checked",
    "certificate_valid_at_signing_time": "the certificate's status at signing time could not be established",
    "integrity": "the integrity could not be checked",
    "signer_identity": "the signatory could not be identified",
}


def _points(check: FrenchRuleCheck) -> dict[str, RuleOutcome]:
    return {
        "format": check.format,
        "certificate_valid_at_signing_time": check.certificate_valid_at_signing_time,
        "integrity": check.integrity,
        "signer_identity": check.signer_identity,
        "certificate_category": check.certificate_category,
    }


def with_category(report: SignatureReport, category: RuleOutcome, why: str) -> SignatureReport:
    """Set the certificate-category point (``why`` says on what basis) and restate the failed points."""
    base = report.french_rule or french_rule(report, report.subindication, None)
    check = replace(base, certificate_category=category)
    points = _points(check)
    # the category may be set again (ASiC members are assessed twice): only this call's outcome counts
    earlier = [n for n in base.failed if n != "certificate_category"]
    failed = tuple(dict.fromkeys([*earlier, *(n for n, o in points.items() if o is RuleOutcome.FAILED)]))
    words = [f"{n}: {FAILED_WORDS[n]}" for n in failed if n in FAILED_WORDS]
    words += [
        f"{n}: {UNCHECKED_WORDS[n]}" for n, o in points.items() if o is RuleOutcome.NOT_CHECKED and n in UNCHECKED_WORDS
    ]
    # the category's own sentence says why, in place of the generic one
    details = [w for w in words if not w.startswith("certificate_category:")]
    details.append(f"certificate_category: {why}")
    return replace(report, french_rule=replace(check, failed=failed, details=tuple(details)))


def with_french_rule(report: SignatureReport, ades_sub: SubIndication | None, intact: bool | None) -> SignatureReport:
    return replace(report, french_rule=french_rule(report, ades_sub, intact))
