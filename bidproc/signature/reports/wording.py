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

from bidproc.signature.report import (
    Indication,
    Qualification,
    RuleOutcome,
    SignatureReport,
    SubIndication,
    TimestampInfo,
    ValidationReport,
)

Lang = Literal["fr", "en"]
LANGS: tuple[Lang, ...] = ("fr", "en")

_MONTHS = {
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "en": "January February March April May June July August September October November December".split(),
}

# Why a signature did not pass, by EN 319 102-1 sub-indication.
_REASONS: dict[SubIndication, tuple[str, str]] = {
    SubIndication.HASH_FAILURE: (
        "le document a été modifié après la signature (son empreinte ne correspond plus)",
        "the document was altered after signing (its digest no longer matches)",
    ),
    SubIndication.SIG_CRYPTO_FAILURE: (
        "la valeur de signature est fausse : elle ne correspond ni au document ni au certificat",
        "the signature value does not verify against the document and the certificate",
    ),
    SubIndication.FORMAT_FAILURE: (
        "la signature est mal formée ou ne respecte pas son format (PAdES, CAdES, XAdES)",
        "the signature is malformed or does not follow its format (PAdES, CAdES, XAdES)",
    ),
    SubIndication.REVOKED: (
        "le certificat du signataire était révoqué au moment de la signature",
        "the signer's certificate was revoked at signing time",
    ),
    SubIndication.EXPIRED: (
        "le certificat du signataire avait expiré au moment de la signature",
        "the signer's certificate had expired at signing time",
    ),
    SubIndication.NOT_YET_VALID: (
        "le certificat du signataire n'était pas encore valide au moment de la signature",
        "the signer's certificate was not yet valid at signing time",
    ),
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: (
        "le certificat du signataire ne se rattache à aucune autorité de confiance",
        "the signer's certificate does not chain to any trusted authority",
    ),
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: (
        "le certificat du signataire est introuvable",
        "the signer's certificate could not be found",
    ),
    SubIndication.TRY_LATER: (
        "le statut de révocation du certificat n'a pas pu être obtenu ; la vérification est à refaire plus tard",
        "the certificate's revocation status could not be obtained; check again later",
    ),
    SubIndication.REVOKED_NO_POE: (
        "le certificat a été révoqué et rien ne prouve que la signature existait avant la révocation",
        "the certificate was revoked and nothing proves the signature existed before the revocation",
    ),
    SubIndication.OUT_OF_BOUNDS_NO_POE: (
        "le certificat a expiré et rien ne prouve que la signature existait avant son expiration",
        "the certificate expired and nothing proves the signature existed before it expired",
    ),
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: (
        "le certificat a expiré et rien ne prouve que la signature existait avant son expiration",
        "the certificate expired and nothing proves the signature existed before it expired",
    ),
    SubIndication.SIGNED_DATA_NOT_FOUND: (
        "le document signé n'a pas été trouvé parmi les fichiers fournis",
        "the signed document was not found among the files provided",
    ),
    SubIndication.NO_POE: (
        "rien ne prouve que la signature existait au moment requis",
        "nothing proves the signature existed when required",
    ),
}

_QUALIFICATION: dict[Qualification, tuple[str, str]] = {
    Qualification.QESIG: ("Signature électronique qualifiée (eIDAS)", "Qualified electronic signature (eIDAS)"),
    Qualification.QESEAL: ("Cachet électronique qualifié (eIDAS)", "Qualified electronic seal (eIDAS)"),
    Qualification.ADESIG_QC: (
        "Signature avancée reposant sur un certificat qualifié (sans dispositif qualifié de création)",
        "Advanced electronic signature with a qualified certificate (no qualified signature creation device)",
    ),
    Qualification.ADESEAL_QC: (
        "Cachet avancé reposant sur un certificat qualifié (sans dispositif qualifié de création)",
        "Advanced electronic seal with a qualified certificate (no qualified creation device)",
    ),
    Qualification.ADESIG: (
        "Signature électronique avancée, certificat non qualifié",
        "Advanced electronic signature, certificate not qualified",
    ),
    Qualification.ADESEAL: (
        "Cachet électronique avancé, certificat non qualifié",
        "Advanced electronic seal, certificate not qualified",
    ),
    Qualification.NA: ("Non déterminé", "Not determined"),
}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("Rapport de validation de signature électronique", "Electronic signature validation report"),
    "document": ("Document", "Document"),
    "file_name": ("Nom du fichier", "File name"),
    "sha256": ("Empreinte SHA-256", "SHA-256 digest"),
    "size": ("Taille", "Size"),
    "bytes": ("octets", "bytes"),
    "detached": ("Données signées fournies à part", "Signed data provided separately"),
    "validated_at": ("Date de la vérification", "Checked on"),
    "verdict": ("Conclusion", "Conclusion"),
    "signature": ("Signature", "Signature"),
    "signer": ("Signataire", "Signer"),
    "name": ("Nom", "Name"),
    "organisation": ("Organisation", "Organisation"),
    "identifier": ("Identifiant", "Identifier"),
    "full_subject": ("Identité complète (certificat)", "Full identity (certificate)"),
    "chain": ("Chaîne de certification", "Certificate chain"),
    "signer_certificate": ("Certificat du signataire", "Signer's certificate"),
    "issued_by": ("Délivré par", "Issued by"),
    "valid_from_to": ("Valable du {0} au {1}", "Valid from {0} to {1}"),
    "fingerprint": ("Empreinte SHA-256 du certificat", "Certificate SHA-256 fingerprint"),
    "trusted_root": ("Rattachement à une autorité de confiance", "Chains to a trusted authority"),
    "qualified": ("Statut qualifié", "Qualified status"),
    "basis": ("Sur quelle base", "On what basis"),
    "no_basis": (
        "Les listes de confiance européennes (eIDAS) n'ont pas été consultées pour cette vérification : "
        "le statut qualifié n'est pas établi.",
        "The EU trusted lists (eIDAS) were not consulted for this check: the qualified status is not established.",
    ),
    "basis_unknown": (
        "Le statut qualifié n'a pas pu être établi. Précisions techniques :",
        "The qualified status could not be established. Technical details:",
    ),
    "times": ("Date de signature et preuve d'existence", "Signing time and proof of existence"),
    "claimed_time": ("Date déclarée par le signataire", "Time claimed by the signer"),
    "claimed_note": ("(non prouvée : lue dans la signature)", "(not proven: read from the signature)"),
    "best_time_short": ("signée au plus tard le", "signed no later than"),
    "best_time": ("Existence prouvée au plus tard le", "Proven to exist no later than"),
    "best_time_none": (
        "Aucune preuve d'existence antérieure à la vérification",
        "No proof of existence before the check",
    ),
    "timestamps": ("Horodatages", "Timestamps"),
    "no_timestamp": ("Aucun horodatage", "No timestamp"),
    "tsa": ("Autorité d'horodatage", "Timestamping authority"),
    "valid": ("valide", "valid"),
    "not_valid": ("NON valide", "NOT valid"),
    "revocation": ("Révocation du certificat à la date de signature", "Certificate revocation at signing time"),
    "changes": ("Modifications après la signature", "Changes after signing"),
    "no_changes": ("Aucune modification après la signature.", "No change after signing."),
    "revision": ("révision", "revision"),
    "allowed": ("autorisée par le signataire", "allowed by the signer"),
    "not_allowed": ("NON autorisée", "NOT allowed"),
    "french_rule": (
        "Contrôles de l'arrêté du 22 mars 2019 (signature électronique dans les marchés publics)",
        "Checks of the French order of 22 March 2019 (electronic signatures in public procurement)",
    ),
    "compliant": ("Conforme à l'arrêté", "Meets the order"),
    "not_compliant": ("NON conforme à l'arrêté", "Does NOT meet the order"),
    "rule_unknown": (
        "Conformité à l'arrêté NON établie : des points n'ont pas pu être vérifiés",
        "Compliance with the order NOT established: some points could not be checked",
    ),
    "unchecked_points": ("Points non vérifiés", "Points not checked"),
    "rule_details": ("Précisions", "Details"),
    "failed_points": ("Points en échec", "Failed points"),
    "technical": ("Détails techniques", "Technical details"),
    "indication": ("Indication (ETSI EN 319 102-1)", "Indication (ETSI EN 319 102-1)"),
    "format_level": ("Format et niveau", "Format and level"),
    "signed_data": ("Données couvertes par la signature", "Data the signature covers"),
    "warnings": ("Avertissements", "Warnings"),
    "errors": ("Erreurs", "Errors"),
    "problems": ("Problèmes sur le fichier", "Problems with the file"),
    "yes": ("oui", "yes"),
    "no": ("non", "no"),
    "unknown": ("non établi", "not established"),
    "footer": (
        "Produit par bidproc. Le PDF de ce rapport est scellé (PAdES) par le cachet du service et horodaté.",
        "Produced by bidproc. The PDF form of this report is sealed (PAdES) with the service seal and timestamped.",
    ),
    "page": ("page", "page"),
    "colon": ("\u00a0: ", ": "),
    "no_signature": (
        "Aucune signature électronique n'a été trouvée dans ce fichier.",
        "No electronic signature was found in this file.",
    ),
}

_POINTS: dict[str, tuple[str, str]] = {
    "format": ("Format de signature (XAdES, CAdES ou PAdES)", "Signature format (XAdES, CAdES or PAdES)"),
    "certificate_valid_at_signing_time": (
        "Certificat ni expiré ni révoqué à la date de signature",
        "Certificate neither expired nor revoked at signing time",
    ),
    "integrity": ("Intégrité du document signé", "Integrity of the signed document"),
    "signer_identity": ("Identité du signataire", "Signer's identity"),
    "certificate_category": (
        "Catégorie du certificat (qualifié eIDAS ou équivalent accepté)",
        "Certificate category (eIDAS qualified or accepted equivalent)",
    ),
}
_OUTCOME: dict[RuleOutcome, tuple[str, str]] = {
    RuleOutcome.PASSED: ("satisfait", "met"),
    RuleOutcome.FAILED: ("NON satisfait", "NOT met"),
    RuleOutcome.NOT_CHECKED: ("non vérifié", "not checked"),
}
_TIMESTAMP_KIND: dict[str, tuple[str, str]] = {
    "signature": ("Horodatage de la signature", "Signature timestamp"),
    "document": ("Horodatage du document", "Document timestamp"),
    "archive": ("Horodatage d'archivage", "Archive timestamp"),
    "content": ("Horodatage du contenu, avant signature", "Content timestamp, before signing"),
    "deposit": ("Dépôt de l'offre (horodatage de l'accusé de réception)", "Bid deposit (receipt timestamp)"),
}
_CHANGE_KIND: dict[str, tuple[str, str]] = {
    "form_filling": ("remplissage de formulaire", "form filling"),
    "annotation": ("annotation", "annotation"),
    "signature": ("signature ou horodatage ajouté", "signature or timestamp added"),
    "page_added": ("page ajoutée", "page added"),
    "page_removed": ("page supprimée", "page removed"),
    "content_changed": ("contenu modifié", "content changed"),
    "other": ("autre", "other"),
}


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "fr" else pair[1]


def text(key: str, lang: Lang) -> str:
    return _pick(TEXT[key], lang)


def when(t: datetime | None, lang: Lang) -> str:
    """A date a person reads: '1 décembre 2026 à 10:09:01 UTC' / '1 December 2026, 10:09:01 UTC'."""
    if t is None:
        return "—"
    u = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    month = _MONTHS[lang][u.month - 1]
    clock = u.strftime("%H:%M:%S")
    return f"{u.day} {month} {u.year} à {clock} UTC" if lang == "fr" else f"{u.day} {month} {u.year}, {clock} UTC"


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
    if sig.subindication in _REASONS:
        return _pick(_REASONS[sig.subindication], lang)
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


def overall(report: ValidationReport, lang: Lang) -> str:
    sigs = report.signatures
    if not sigs:
        return text("no_signature", lang)
    if report.bottom_line:
        stamps = sum(1 for s in sigs if is_document_timestamp(s))
        n = len(sigs) - stamps
        if n <= 1:
            head = verdict(sigs[0], lang) if n == 1 else ""
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
    bad = [s for s in sigs if s.indication is not Indication.TOTAL_PASSED]
    if len(sigs) == 1 or not bad:
        return verdict(bad[0], lang) if bad else verdict(sigs[0], lang)
    return _pick(
        (
            f"{len(bad)} signature(s) sur {len(sigs)} NE sont PAS valides",
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
    return _pick(_QUALIFICATION[q], lang)


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
        return _pick(_REASONS[SubIndication.REVOKED_NO_POE if sub is not SubIndication.REVOKED else sub], lang)
    if sub is SubIndication.TRY_LATER:
        return _pick(_REASONS[sub], lang)
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
        return _pick(_REASONS.get(sub or SubIndication.REVOKED, _REASONS[SubIndication.REVOKED]), lang)
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
    outcomes = [getattr(fr, name) for name in _POINTS]
    if fr.failed or RuleOutcome.FAILED in outcomes:
        return "failed"
    return "compliant" if all(o is RuleOutcome.PASSED for o in outcomes) else "unknown"


def rule_details(sig: SignatureReport) -> tuple[str, ...]:
    """The points in words, where the French-rule step gives them (``details``, trusted-lists work)."""
    details = getattr(sig.french_rule, "details", ())
    return tuple(str(d) for d in details) if isinstance(details, list | tuple) else ()


def unchecked_points(sig: SignatureReport) -> tuple[str, ...]:
    fr = sig.french_rule
    return () if fr is None else tuple(n for n in _POINTS if getattr(fr, n) is RuleOutcome.NOT_CHECKED)


def timestamp_qualified(ts: TimestampInfo, lang: Lang) -> str:
    """'qualified (QTST)' / 'not qualified' where the trusted lists were consulted; '' otherwise."""
    qualified = getattr(ts, "qualified", None)
    if qualified is True:
        return _pick(("horodatage qualifié (QTST)", "qualified timestamp (QTST)"), lang)
    if qualified is False:
        return _pick(("horodatage non qualifié", "not a qualified timestamp"), lang)
    return ""


def point(name: str, lang: Lang) -> str:
    return _pick(_POINTS[name], lang)


def outcome(o: RuleOutcome, lang: Lang) -> str:
    return _pick(_OUTCOME[o], lang)


def timestamp_kind(kind: str, lang: Lang) -> str:
    return _pick(_TIMESTAMP_KIND.get(kind, (kind, kind)), lang)


def change_kind(kind: str, lang: Lang) -> str:
    return _pick(_CHANGE_KIND.get(kind, (kind, kind)), lang)
