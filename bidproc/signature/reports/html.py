"""The human-readable report as HTML (Jinja2, autoescaped: file and signer names are hostile input).

One template serves the HTML page and the PDF (``for_pdf`` adds the print layout WeasyPrint uses).
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bidproc.signature.reports import wording
from bidproc.signature.reports.subject import Subject
from bidproc.signature.reports.wording import Lang


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bidproc.signature.reports", "templates"),
        # Always on, whatever the file name: the template is HTML and every value in it is untrusted.
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["w"] = wording
    return env


def render_html(subject: Subject, lang: Lang = "fr", *, for_pdf: bool = False) -> str:
    if lang not in wording.LANGS:
        raise ValueError(f"language {lang!r}: one of {', '.join(wording.LANGS)}")
    report = subject.report
    template = _environment().get_template("report.html.j2")
    return template.render(
        s=subject,
        report=report,
        lang=lang,
        t=lambda key: wording.text(key, lang),
        overall=wording.overall(report, lang),
        overall_tone=wording.tone((sig.indication for sig in report.signatures), bool(report.problems)),
        for_pdf=for_pdf,
    )
