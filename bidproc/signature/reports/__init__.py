"""Validation reports for people and tools: ETSI TS 119 102-2 XML, and HTML / sealed PDF for lawyers.

Every renderer reads bidproc's own :class:`~bidproc.signature.report.ValidationReport` (PAdES, CAdES
and XAdES alike) plus the :class:`Subject` facts only the caller knows (the files' hashes, the
validation time); none of them validates anything. Modules: ``subject`` (those facts), ``etsi_xml``,
``wording`` (verdicts in plain French and English), ``html`` (Jinja2 templates), ``pdf`` (WeasyPrint),
``pdf_seal`` (the service's PAdES seal on the PDF).
"""

from bidproc.signature.reports.subject import Document, Subject

__all__ = ["Document", "Subject"]
