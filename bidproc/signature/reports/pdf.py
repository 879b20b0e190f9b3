"""The human-readable report as a PDF: the HTML template laid out by WeasyPrint, then sealed.

WeasyPrint (pure Python over Pango, from Debian) renders the same Jinja2 template as the HTML
report, so both say exactly the same thing; :mod:`pdf_seal` then seals the PDF with the service's
PAdES seal and a timestamp so it can be filed as evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bidproc.signature.reports.html import render_html
from bidproc.signature.reports.pdf_seal import seal_pdf
from bidproc.signature.reports.subject import Subject
from bidproc.signature.reports.wording import Lang
from bidproc.timestamps.localca import LocalPKI
from bidproc.timestamps.tsa import TimestampAuthority


def render_pdf(subject: Subject, lang: Lang = "fr") -> bytes:
    """The unsealed PDF (what :func:`render_sealed_pdf` seals)."""
    # heavy import (Pango via cffi): only when a PDF is asked for; WeasyPrint ships no type hints
    from weasyprint import HTML  # type: ignore[import-untyped]

    title = "Rapport de validation de signature" if lang == "fr" else "Signature validation report"
    html = HTML(string=render_html(subject, lang, for_pdf=True))
    pdf: bytes = html.write_pdf(metadata={"title": f"{title} — {subject.report.subject}"}) or b""
    return pdf


def render_sealed_pdf(
    subject: Subject,
    lang: Lang,
    pki: LocalPKI,
    tsa: TimestampAuthority,
    *,
    tsa_roots: tuple[bytes, ...] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bytes:
    reason = "Rapport de validation de signature (bidproc)" if lang == "fr" else "Signature validation report (bidproc)"
    return seal_pdf(render_pdf(subject, lang), pki, tsa, tsa_roots=tsa_roots, clock=clock, reason=reason)
