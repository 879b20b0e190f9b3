"""Every phrase of the human-readable report, in French and English: (fr, en) pairs, data only.

:mod:`wording` picks from these tables; nothing here decides anything.
"""

from __future__ import annotations

from bidproc.signature.report import Qualification, RuleOutcome, SubIndication

# Why a signature did not pass, by EN 319 102-1 sub-indication.
REASONS: dict[SubIndication, tuple[str, str]] = {
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

QUALIFICATION: dict[Qualification, tuple[str, str]] = {
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
    "enveloped": ("Document signé, contenu dans la signature", "Signed document, inside the signature"),
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
    "no_time_proof": (
        "Aucun horodatage valide ne prouve une date antérieure à la vérification : la date déclarée n'est pas prouvée.",
        "No valid timestamp proves an earlier time than the check: the claimed time is not proven.",
    ),
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

POINTS: dict[str, tuple[str, str]] = {
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
OUTCOME: dict[RuleOutcome, tuple[str, str]] = {
    RuleOutcome.PASSED: ("satisfait", "met"),
    RuleOutcome.FAILED: ("NON satisfait", "NOT met"),
    RuleOutcome.NOT_CHECKED: ("non vérifié", "not checked"),
}
TIMESTAMP_KIND: dict[str, tuple[str, str]] = {
    "signature": ("Horodatage de la signature", "Signature timestamp"),
    "document": ("Horodatage du document", "Document timestamp"),
    "archive": ("Horodatage d'archivage", "Archive timestamp"),
    "content": ("Horodatage du contenu, avant signature", "Content timestamp, before signing"),
    "deposit": ("Dépôt de l'offre (horodatage de l'accusé de réception)", "Bid deposit (receipt timestamp)"),
}
CHANGE_KIND: dict[str, tuple[str, str]] = {
    "form_filling": ("remplissage de formulaire", "form filling"),
    "annotation": ("annotation", "annotation"),
    "signature": ("signature ou horodatage ajouté", "signature or timestamp added"),
    "page_added": ("page ajoutée", "page added"),
    "page_removed": ("page supprimée", "page removed"),
    "content_changed": ("contenu modifié", "content changed"),
    "other": ("autre", "other"),
}
