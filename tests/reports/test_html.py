"""The HTML report for a lawyer: verdict first in plain words, signer, qualification, FR and EN, escaped."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from lxml import html as lxml_html

from bidproc.signature.report import FrenchRuleCheck, Qualification, RuleOutcome, SignatureReport, TimestampInfo
from bidproc.signature.reports import Subject
from bidproc.signature.reports.html import render_html


def page(subject: Subject, lang: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(render_html(subject, lang))  # type: ignore[arg-type]


def text_of(el: lxml_html.HtmlElement) -> str:
    return " ".join(el.text_content().split())


VERDICTS = {
    # sample: (fr, en) words the verdict banner must say
    "pades-B-LT": ("Signature valide", "Valid signature"),
    "cades-detached": ("Signature valide", "Valid signature"),
    "xades-B-T": ("Signature valide", "Valid signature"),
    "pades-modified": (
        "La signature n'est PAS valide : le document a été modifié après la signature",
        "The signature is NOT valid: the document was changed after it was signed",
    ),
    "pades-hash-failure": (
        "La signature n'est PAS valide : le document a été modifié après la signature (son empreinte ne",
        "The signature is NOT valid: the document was altered after signing",
    ),
    "pades-revoked": (
        "La signature n'est PAS valide : le certificat du signataire était révoqué au moment de la signature",
        "The signature is NOT valid: the signer's certificate was revoked at signing time",
    ),
    "xades-revoked": ("révoqué au moment de la signature", "revoked at signing time"),
    "pades-untrusted": (
        "La validité de la signature n'a PAS pu être établie : le certificat du signataire ne se rattache à aucune",
        "The signature's validity could NOT be established: the signer's certificate does not chain",
    ),
    "cades-wrong-data": ("La signature n'est PAS valide", "The signature is NOT valid"),
    "unsigned": ("Aucune signature électronique", "No electronic signature was found"),
}


@pytest.mark.parametrize("sample", sorted(VERDICTS))
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_verdict_first_in_plain_words(subjects: dict[str, Subject], sample: str, lang: str) -> None:
    doc = page(subjects[sample], lang)
    assert doc.get("lang") == lang
    banner = doc.get_element_by_id("verdict")
    expected = VERDICTS[sample][0 if lang == "fr" else 1]
    assert expected in text_of(banner).replace("\u00a0", " ")
    # the banner is the first thing after the title
    body = doc.find("body")
    assert [c.tag for c in body][:2] == ["header", "section"] and body[1].get("id") == "verdict"
    tone = "passed" if subjects[sample].report.bottom_line else ("failed", "indeterminate")
    assert banner.get("class").split()[-1] in (tone if isinstance(tone, tuple) else (tone,))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_signer_chain_times_and_qualification_visible(subjects: dict[str, Subject], lang: str) -> None:
    subject = subjects["pades-B-LT"]
    sig = subject.report.signatures[0]
    assert sig.signer is not None and sig.signer.certificate_sha256 and sig.best_signature_time
    words = text_of(page(subject, lang))
    assert sig.signer.common_name == "Alice Martin" and "Alice Martin" in words
    assert sig.signer.issuer is not None and sig.signer.issuer in words
    assert sig.signer.certificate_sha256 in words
    assert subject.document.sha256 in words
    qual = text_of(page(subject, lang).get_element_by_id("qualification-1"))
    assert qual.startswith("Non déterminé" if lang == "fr" else "Not determined")
    # the basis: the trusted lists were not consulted (this branch), or why the status is not established
    not_consulted = "listes de confiance" if lang == "fr" else "trusted lists"
    not_established = "n'a pas pu être établi" if lang == "fr" else "could not be established"
    assert not_consulted in words or not_established in words
    assert ("Horodatage de la signature" if lang == "fr" else "Signature timestamp") in words
    assert ("Existence prouvée au plus tard le" if lang == "fr" else "Proven to exist no later than") in words


@pytest.mark.parametrize(
    ("qualification", "fr", "en"),
    [
        (Qualification.QESIG, "Signature électronique qualifiée", "Qualified electronic signature"),
        (Qualification.ADESIG_QC, "certificat qualifié", "with a qualified certificate"),
        (Qualification.ADESIG, "certificat non qualifié", "certificate not qualified"),
    ],
)
def test_qualification_in_words(subjects: dict[str, Subject], qualification: Qualification, fr: str, en: str) -> None:
    subject = subjects["xades-B-T"]
    sig = replace(subject.report.signatures[0], qualification=qualification)
    subject = replace(subject, report=replace(subject.report, signatures=(sig,)))
    for lang, expected in (("fr", fr), ("en", en)):
        qual = text_of(page(subject, lang).get_element_by_id("qualification-1"))
        assert expected in qual and f"({qualification.value})" in qual
        assert ("listes de confiance" if lang == "fr" else "trusted lists") not in qual


def test_modifications_and_french_rule_point_by_point(subjects: dict[str, Subject]) -> None:
    fr_words = text_of(page(subjects["pades-modified"], "fr"))
    en_words = text_of(page(subjects["pades-modified"], "en"))
    assert "page ajoutée (NON autorisée)" in fr_words and "page added (NOT allowed)" in en_words
    assert "contenu modifié (NON autorisée)" in fr_words
    assert "NON conforme à l'arrêté" in fr_words and "Does NOT meet the order" in en_words
    rows = {
        text_of(tr[0]): text_of(tr[1])
        for tr in page(subjects["pades-modified"], "fr").xpath("//table[@class='points']//tr")
    }
    assert rows == {
        "Format de signature (XAdES, CAdES ou PAdES)": "satisfait",
        "Certificat ni expiré ni révoqué à la date de signature": "satisfait",
        "Intégrité du document signé": "NON satisfait",
        "Identité du signataire": "satisfait",
        "Catégorie du certificat (qualifié eIDAS ou équivalent accepté)": "non vérifié",
    }
    ok = text_of(page(subjects["pades-B-T"], "fr"))
    assert "Aucune modification après la signature." in ok


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_french_rule_not_compliant_while_a_point_is_unchecked(subjects: dict[str, Subject], lang: str) -> None:
    """No point failed, but the certificate category was not checked: that is not compliance."""
    subject = subjects["pades-B-T"]
    sig = subject.report.signatures[0]
    assert sig.french_rule is not None and sig.french_rule.bottom_line  # the model's "nothing failed"
    verdict = text_of(page(subject, lang).get_element_by_id("french-rule-1"))
    if lang == "fr":
        assert verdict.startswith("Conformité à l'arrêté NON établie")
        assert "Catégorie du certificat" in verdict and "Conforme à l'arrêté" not in verdict
    else:
        assert verdict.startswith("Compliance with the order NOT established") and "Certificate category" in verdict
    checked = replace(sig, french_rule=replace(sig.french_rule, certificate_category=RuleOutcome.PASSED))
    subject = replace(subject, report=replace(subject.report, signatures=(checked,)))
    verdict = text_of(page(subject, lang).get_element_by_id("french-rule-1"))
    assert verdict == ("Conforme à l'arrêté" if lang == "fr" else "Meets the order")


def _fields(obj: object) -> dict[str, object]:
    """A dataclass's fields by name (the subclasses below add the trusted-lists fields, or keep theirs)."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Stamp(TimestampInfo):
    qualified: bool | None = None  # as the trusted-lists work adds it


@dataclass(frozen=True)
class _Rule(FrenchRuleCheck):
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Sig(SignatureReport):
    qualification_details: tuple[str, ...] = ()


def test_qualification_basis_qtst_and_rule_details_when_the_trusted_lists_give_them(
    subjects: dict[str, Subject],
) -> None:
    subject = subjects["pades-B-T"]
    sig = subject.report.signatures[0]
    assert sig.french_rule is not None
    fields = _fields(sig)
    fields.update(
        qualification=Qualification.QESIG,
        qualification_details=("<b>FR</b> trusted list: service granted at 2026-01-01", "QSCD: yes"),
        timestamps=tuple(_Stamp(**(_fields(t) | {"qualified": True})) for t in sig.timestamps),
        french_rule=_Rule(
            **(_fields(sig.french_rule) | {"details": ("certificate_category: qualified (QESig)",)}),
        ),
    )
    subject = replace(subject, report=replace(subject.report, signatures=(_Sig(**fields),)))
    out = render_html(subject, "en")
    assert "<b>FR</b>" not in out
    doc = lxml_html.fromstring(out)
    words = text_of(doc)
    assert "<b>FR</b> trusted list: service granted at 2026-01-01" in words and "QSCD: yes" in words
    assert "valid — qualified timestamp (QTST)" in words
    assert "certificate_category: qualified (QESig)" in words
    assert "Qualified electronic signature (eIDAS)" in text_of(doc.get_element_by_id("qualification-1"))


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</style><script>alert(2)</script>",
    "{{ 7*7 }}{% raw %}",
]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_hostile_names_are_escaped(subjects: dict[str, Subject], hostile: str, lang: str) -> None:
    subject = subjects["pades-modified"]
    sig = subject.report.signatures[0]
    assert sig.signer is not None
    sig = replace(
        sig,
        file=hostile,
        signature_id=hostile,
        signer=replace(sig.signer, common_name=hostile, subject=hostile, organisation=hostile),
        modifications=tuple(replace(m, detail=hostile) for m in sig.modifications),
        warnings=(hostile,),
    )
    report = replace(subject.report, subject=hostile + ".pdf", signatures=(sig,), problems=(hostile,))
    subject = replace(subject, report=report, document=replace(subject.document, name=hostile + ".pdf"))
    out = render_html(subject, lang)  # type: ignore[arg-type]
    if any(c in hostile for c in '<>"&'):
        assert hostile not in out  # never raw
    doc = lxml_html.fromstring(out)
    assert doc.xpath("//script") == [] and doc.xpath("//img") == []
    assert len(doc.xpath("//style")) == 1
    words = doc.text_content()
    assert words.count(hostile) >= 5  # shown to the reader as text, literally (not evaluated)


@pytest.mark.parametrize(
    ("lang", "words"),
    [("fr", "Signature valide, horodatage du document valide"), ("en", "Valid signature, valid document timestamp")],
)
def test_b_lta_document_timestamp_is_not_counted_as_a_signature(
    subjects: dict[str, Subject], lang: str, words: str
) -> None:
    # A signature and a document timestamp reported beside it (as pades.py reports a B-LTA's timestamp
    # today; built here so the test does not hang on how PAdES validation groups them).
    subject = subjects["pades-B-LTA"]
    sig = subject.report.signatures[0]
    when = sig.best_signature_time or subject.validation_time
    stamp = replace(
        sig,
        level=None,
        signature_id="Timestamp-1",
        timestamps=(TimestampInfo(kind="document", time=when, valid=True),),
        modifications=(),
    )
    subject = replace(subject, report=replace(subject.report, signatures=(sig, stamp)))
    assert subject.report.bottom_line
    doc = page(subject, lang)
    assert words in text_of(doc.get_element_by_id("verdict"))
    heading = text_of(doc.get_element_by_id("signature-2").find("h2"))
    assert heading.startswith("Horodatage du document 2/2" if lang == "fr" else "Document timestamp 2/2")


@pytest.mark.parametrize(
    ("problem", "fr", "en"),
    [
        (
            "asic.unsigned_member: annexe.pdf is in the container but no signature covers it",
            "MAIS une partie du fichier n'est couverte par aucune signature",
            "BUT part of the file is not covered by any signature",
        ),
        (
            "xml.partially_signed: the document element is not covered",
            "MAIS une partie du fichier n'est couverte par aucune signature",
            "BUT part of the file is not covered by any signature",
        ),
        (
            "signature.unreadable: ValueError: bad",
            "MAIS le fichier présente des problèmes",
            "BUT the file has problems",
        ),
    ],
)
def test_valid_signatures_on_a_file_with_problems_never_read_as_plain_valid(
    subjects: dict[str, Subject], problem: str, fr: str, en: str
) -> None:
    subject = subjects["xades-B-T"]
    subject = replace(subject, report=replace(subject.report, problems=(problem,)))
    assert not subject.report.bottom_line
    for lang, words in (("fr", fr), ("en", en)):
        doc = page(subject, lang)
        banner = doc.get_element_by_id("verdict")
        assert words in text_of(banner) and "indeterminate" in banner.get("class")
        assert problem in text_of(doc)


def test_several_signatures_one_bad(subjects: dict[str, Subject]) -> None:
    good = subjects["pades-B-T"].report.signatures[0]
    bad = subjects["pades-revoked"].report.signatures[0]
    subject = replace(subjects["pades-B-T"], report=replace(subjects["pades-B-T"].report, signatures=(good, bad)))
    fr = text_of(page(subject, "fr").get_element_by_id("verdict"))
    en = text_of(page(subject, "en").get_element_by_id("verdict"))
    assert "Une signature sur 2 n'est PAS valide : le certificat du signataire était révoqué" in fr
    assert "One of 2 signatures is NOT valid: the signer's certificate was revoked" in en
    subject = replace(subject, report=replace(subject.report, signatures=(bad, bad, good)))
    assert "2 of 3 signatures are NOT valid" in text_of(page(subject, "en").get_element_by_id("verdict"))


@pytest.mark.parametrize(("sample", "proven"), [("pades-B-B", False), ("xades-B-B", False), ("pades-B-T", True)])
def test_time_not_proven_without_a_valid_timestamp(subjects: dict[str, Subject], sample: str, proven: bool) -> None:
    words = text_of(page(subjects[sample], "en"))
    assert ("the claimed time is not proven" not in words) is proven
    fr = text_of(page(subjects[sample], "fr"))
    assert ("la date déclarée n'est pas prouvée" not in fr) is proven
