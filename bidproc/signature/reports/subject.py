"""What a report says about the validated files that the signature reports do not carry."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bidproc.signature.report import ValidationReport


@dataclass(frozen=True)
class Document:
    name: str
    sha256: str
    size: int

    @classmethod
    def of(cls, name: str, data: bytes) -> Document:
        return cls(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


@dataclass(frozen=True)
class Subject:
    """The validated file, the files it may sign (detached data), and when validation ran."""

    report: ValidationReport
    document: Document
    validation_time: datetime
    detached: tuple[Document, ...] = field(default_factory=tuple)
    enveloped: Document | None = None  # the document inside an enveloping CAdES (.p7m) subject

    @classmethod
    def of(
        cls, report: ValidationReport, data: bytes, validation_time: datetime, detached: Mapping[str, bytes]
    ) -> Subject:
        from bidproc.signature.validate import enveloped_content_of

        try:
            content = enveloped_content_of(data)
        except Exception:  # a report is still due on a file whose CMS cannot be read
            content = None
        return cls(
            report=report,
            document=Document.of(report.subject, data),
            validation_time=validation_time,
            detached=tuple(Document.of(n, d) for n, d in detached.items()),
            enveloped=Document.of(report.subject, content) if content is not None else None,
        )

    def detached_named(self, name: str) -> Document | None:
        return next((d for d in self.detached if d.name == name), None)
