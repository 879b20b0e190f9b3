"""The verdicts of a signature report in plain French and English, for a procurement lawyer.

Nothing here decides anything: every sentence is read off the :class:`SignatureReport` that
validation produced (indication, sub-indication, modifications, French-rule points). The order of
precedence in :func:`reason` is the one a reader needs: a document changed after signing is said
first, whatever technical sub-indication the PDF check gave.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from bidproc.errors import Warning_
from bidproc.signature.report import (
    Indication,
    Qualification,
    RuleOutcome,
    SignatureReport,
    SubIndication,
    TimestampInfo,
    ValidationReport,
)
from bidproc.signature.reports import phrases as P

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

_MONTHS = {
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "en": "January February March April May June July August September October November December".split(),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "fr" else pair[1]


def text(key: str, lang: Lang) -> str:
    return _pick(P.TEXT[key], lang)


def when(t: datetime | None, lang: Lang) -> str:
    """A date a person reads: '1 décembre 2026 à 10:09:01 UTC' / '1 December 2026, 10:09:01 UTC'."""
    if t is None:
        return "—"
    u = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    month = _MONTHS[lang][u.month - 1]
    clock = u.strftime("%H:%M:%S")
    return f"{u.day} {month} {u.year} à {clock} UTC" if lang == "fr" else f"{u.day} {month} {u.year}, {clock} UTC"


def has_time_proof(sig: SignatureReport) -> bool:
    """A valid timestamp or deposit proves when the signature existed (else only the check's time does)."""
    return any(t.valid for t in sig.timestamps)


def changed_after_signing(sig: SignatureReport) -> bool:
    return any(not m.allowed for m in sig.modifications)


def reason(sig: SignatureReport, lang: Lang) -> str:
    """Why the signature is not valid (or not established), in one clause."""
    if changed_after_signing(sig):
        return _pick(
            (
                "le document a été modifié après la signature",
                "the document was changed after it was signed",
            ),
            lang,
        )
    if sig.subindication in P.REASONS:
        return _pick(P.REASONS[sig.subindication], lang)
    code = sig.subindication.value if sig.subindication else sig.indication.value
    return _pick((f"la validation n'a pas abouti ({code})", f"validation did not complete ({code})"), lang)


def verdict(sig: SignatureReport, lang: Lang) -> str:
    """The verdict first, in plain words."""
    if sig.indication is Indication.TOTAL_PASSED:
        return _pick(("Signature valide", "Valid signature"), lang)
    if sig.indication is Indication.TOTAL_FAILED:
        return _pick(("La signature n'est PAS valide : ", "The signature is NOT valid: "), lang) + reason(sig, lang)
    return _pick(
        (
            "La validité de la signature n'a PAS pu être établie : ",
            "The signature's validity could NOT be established: ",
        ),
        lang,
    ) + reason(sig, lang)


def _all_valid(sigs: tuple[SignatureReport, ...], lang: Lang) -> str:
    stamps = sum(1 for s in sigs if is_document_timestamp(s))
    signatures = [s for s in sigs if not is_document_timestamp(s)]
    n = len(signatures)
    if n <= 1:
        head = verdict(signatures[0], lang) if n == 1 else ""
    else:
        head = _pick((f"Les {n} signatures sont valides", f"All {n} signatures are valid"), lang)
    if stamps:
        tail = _pick(
            (
                "horodatage du document valide" if stamps == 1 else f"{stamps} horodatages du document valides",
                "valid document timestamp" if stamps == 1 else f"{stamps} valid document timestamps",
            ),
            lang,
        )
        head = f"{head}, {tail}" if head else tail[:1].upper() + tail[1:]
    return head


# File-level problems that mean part of the file is signed by nobody (validate.py reports them).
UNCOVERED = (Warning_.ASIC_UNSIGNED_MEMBER.value, Warning_.XML_PARTIALLY_SIGNED.value)


def overall(report: ValidationReport, lang: Lang) -> str:
    """The conclusion on the whole file: every signature valid, and nothing wrong with the file."""
    sigs = report.signatures
    if not sigs:
        return text("no_signature", lang)
    bad = [s for s in sigs if s.indication is not Indication.TOTAL_PASSED]
    if not bad:
        head = _all_valid(sigs, lang)
        if not report.problems:
            return head
        if any(p.startswith(UNCOVERED) for p in report.problems):
            but = (
                "MAIS une partie du fichier n'est couverte par aucune signature",
                "BUT part of the file is not covered by any signature",
            )
        else:
            but = ("MAIS le fichier présente des problèmes (voir plus bas)", "BUT the file has problems (see below)")
        return f"{head}, {_pick(but, lang)}"
    if len(sigs) == 1:
        return verdict(bad[0], lang)
    if len(bad) == 1:
        return _pick(
            (f"Une signature sur {len(sigs)} n'est PAS valide : ", f"One of {len(sigs)} signatures is NOT valid: "),
            lang,
        ) + reason(bad[0], lang)
    return _pick(
        (
            f"{len(bad)} signatures sur {len(sigs)} ne sont PAS valides",
            f"{len(bad)} of {len(sigs)} signatures are NOT valid",
        ),
        lang,
    )


def tone(indications: Iterable[Indication], problems: bool = False) -> str:
    """CSS class of a verdict: passed, failed or indeterminate."""
    found = set(indications)
    if not found or Indication.TOTAL_FAILED in found:
        return "failed"
    if Indication.INDETERMINATE in found or problems:
        return "indeterminate"
    return "passed"


def qualification(q: Qualification, lang: Lang) -> str:
    return _pick(P.QUALIFICATION[q], lang)


def qualification_basis(sig: SignatureReport) -> tuple[str, ...]:
    """The reasons given with the qualification, where the trusted-list work provides them.

    The field comes with the trusted-lists work (``qualification_details`` on its branch, not yet on
    this one): read it by name, so this module works with and without it.
    """
    for name in ("qualification_details", "qualification_reasons", "reasons"):
        value = getattr(sig, name, None)
        if isinstance(value, str) and value:
            return (value,)
        if isinstance(value, list | tuple) and value:
            return tuple(str(v) for v in value)
    return ()


def revocation(sig: SignatureReport, lang: Lang) -> str:
    """The certificate's revocation status at the (proven) signing time, as a sentence."""
    sentence = _revocation(sig, lang)
    return sentence[:1].upper() + sentence[1:]


def _revocation(sig: SignatureReport, lang: Lang) -> str:
    sub = sig.subindication
    if sub in {SubIndication.REVOKED, SubIndication.REVOKED_NO_POE, SubIndication.REVOKED_CA_NO_POE}:
        return _pick(P.REASONS[SubIndication.REVOKED_NO_POE if sub is not SubIndication.REVOKED else sub], lang)
    if sub is SubIndication.TRY_LATER:
        return _pick(P.REASONS[sub], lang)
    point = sig.french_rule.certificate_valid_at_signing_time if sig.french_rule else RuleOutcome.NOT_CHECKED
    if point is RuleOutcome.PASSED:
        return _pick(
            (
                "Vérifié : le certificat n'était ni révoqué ni expiré à la date de signature prouvée.",
                "Checked: the certificate was neither revoked nor expired at the proven signing time.",
            ),
            lang,
        )
    if point is RuleOutcome.FAILED:
        return _pick(P.REASONS.get(sub or SubIndication.REVOKED, P.REASONS[SubIndication.REVOKED]), lang)
    return _pick(
        (
            "Non établi : la validation s'est arrêtée avant de pouvoir le vérifier.",
            "Not established: validation stopped before this could be checked.",
        ),
        lang,
    )


def chains_to_trusted_root(sig: SignatureReport, lang: Lang) -> str:
    if sig.subindication in {SubIndication.NO_CERTIFICATE_CHAIN_FOUND, SubIndication.NO_SIGNING_CERTIFICATE_FOUND}:
        return text("no", lang)
    if sig.indication is Indication.TOTAL_PASSED or sig.subindication in {
        SubIndication.REVOKED,
        SubIndication.EXPIRED,
        SubIndication.NOT_YET_VALID,
        SubIndication.TRY_LATER,
        SubIndication.REVOKED_NO_POE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
    }:
        return text("yes", lang)
    return text("unknown", lang)


def is_document_timestamp(sig: SignatureReport) -> bool:
    """A PAdES document timestamp, which validation reports like a signature."""
    return sig.level is None and any(t.kind == "document" for t in sig.timestamps)


def signature_heading(sig: SignatureReport, lang: Lang) -> str:
    return timestamp_kind("document", lang) if is_document_timestamp(sig) else text("signature", lang)


def rule_verdict(sig: SignatureReport) -> str:
    """'compliant' only when every point was checked and passed; 'failed' when one failed; else 'unknown'.

    ``FrenchRuleCheck.bottom_line`` only says no point failed: a point not checked (e.g. the certificate
    category without trusted lists) must not read as compliance to a lawyer.
    """
    fr = sig.french_rule
    if fr is None:
        return "unknown"
    outcomes = [getattr(fr, name) for name in P.POINTS]
    if fr.failed or RuleOutcome.FAILED in outcomes:
        return "failed"
    return "compliant" if all(o is RuleOutcome.PASSED for o in outcomes) else "unknown"


def rule_details(sig: SignatureReport) -> tuple[str, ...]:
    """The points in words, where the French-rule step gives them (``details``, trusted-lists work)."""
    details = getattr(sig.french_rule, "details", ())
    return tuple(str(d) for d in details) if isinstance(details, list | tuple) else ()


def unchecked_points(sig: SignatureReport) -> tuple[str, ...]:
    fr = sig.french_rule
    return () if fr is None else tuple(n for n in P.POINTS if getattr(fr, n) is RuleOutcome.NOT_CHECKED)


def timestamp_qualified(ts: TimestampInfo, lang: Lang) -> str:
    """'qualified (QTST)' / 'not qualified' where the trusted lists were consulted; '' otherwise."""
    qualified = getattr(ts, "qualified", None)
    if qualified is True:
        return _pick(("horodatage qualifié (QTST)", "qualified timestamp (QTST)"), lang)
    if qualified is False:
        return _pick(("horodatage non qualifié", "not a qualified timestamp"), lang)
    return ""


def point(name: str, lang: Lang) -> str:
    return _pick(P.POINTS[name], lang)


def outcome(o: RuleOutcome, lang: Lang) -> str:
    return _pick(P.OUTCOME[o], lang)


def timestamp_kind(kind: str, lang: Lang) -> str:
    return _pick(P.TIMESTAMP_KIND.get(kind, (kind, kind)), lang)


def change_kind(kind: str, lang: Lang) -> str:
    return _pick(P.CHANGE_KIND.get(kind, (kind, kind)), lang)
