"""What each stage decided, as typed values: built here, and only here, then stored as JSON.

A stage's result crosses three boundaries — the document sandbox's pipe, the ``documents`` and
``stage_runs`` rows, and the API's status answer — so its shape is written once: each outcome is a
frozen dataclass with ``Code``-typed fields, and ``to_json`` is the one place its stored form is spelt
(the stored JSON is a contract: clients and the evidence package read it; keys never change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bidproc.domain import Verdict
from bidproc.errors import Code
from bidproc.intake.verdict import FileVerdict, MalwareTrace


@dataclass(frozen=True)
class DocumentOutcome:
    """The intake stage's decision on one document: what its ``documents`` row records."""

    verdict: Verdict
    code: Code | None
    message: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)  # FileVerdict.to_json(), renditions as stored
    malware: tuple[MalwareTrace, ...] = ()

    @classmethod
    def inspected(cls, found: FileVerdict, renditions: list[dict[str, Any]]) -> DocumentOutcome:
        """Intake looked at the document: its verdict, with the stored renditions in place of the bytes."""
        report = {**found.to_json(), "renditions": renditions}
        code = Code(found.code) if found.code is not None else None
        return cls(found.verdict, code, found.message, report, found.malware)

    @classmethod
    def refused(cls, code: Code, message: str) -> DocumentOutcome:
        """Intake could not finish on this document (it crashed or overran the sandbox): rejected."""
        return cls(Verdict.REJECTED, code, message)

    @classmethod
    def not_read(cls) -> DocumentOutcome:
        """French rule: a bid in which malware was found is not read any further."""
        return cls(Verdict.QUARANTINED, Code.BID_QUARANTINED, "not read: another file of this bid carries malware")

    def malware_json(self) -> list[dict[str, str]]:
        return [{"path": m.path, "signature": m.signature, "sha256": m.sha256} for m in self.malware]

    def detail_json(self) -> dict[str, Any]:
        """The ``documents.detail`` column."""
        return {"report": dict(self.report), "malware": self.malware_json(), "message": self.message}


@dataclass(frozen=True)
class SignedDocument:
    """Where one document's validation report is stored, in which forms, and its verdict in short."""

    object_key: str
    forms: tuple[str, ...]
    bottom_line: bool  # ValidationReport.bottom_line: the file passes as a whole
    indications: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"object_key": self.object_key, "forms": list(self.forms), "bottom_line": self.bottom_line,
                "indications": list(self.indications)}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> SignedDocument:
        """The stored form read back (rows written before report forms existed have no ``forms``)."""
        return cls(str(stored.get("object_key", "")), tuple(stored.get("forms", ("json",))),
                   bool(stored.get("bottom_line")), tuple(stored.get("indications", ())))


@dataclass(frozen=True)
class SignatureOutcome:
    """The signature stage's result for a bid: one report per validated document, or why none was made."""

    reports: Mapping[str, SignedDocument] = field(default_factory=dict)
    skipped_too_large: tuple[str, ...] = ()
    skipped: Code | None = None  # the whole stage was skipped (malware in the bid)

    @classmethod
    def not_read(cls) -> SignatureOutcome:
        """French rule: a bid in which malware was found is not read any further."""
        return cls(skipped=Code.MALWARE_DETECTED)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> SignatureOutcome:
        """A ``stage_runs`` row's result read back (empty when the stage has not run)."""
        if stored.get("skipped"):
            return cls(skipped=Code(stored["skipped"]))
        return cls({name: SignedDocument.from_json(r) for name, r in (stored.get("reports") or {}).items()},
                   tuple(stored.get("skipped_too_large", ())))

    def to_json(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped.value}
        return {"skipped_too_large": list(self.skipped_too_large),
                "reports": {name: r.to_json() for name, r in self.reports.items()}}


@dataclass(frozen=True)
class ArchiveOutcome:
    """The archive stage's result: how many objects the manifest lists, where the evidence package is."""

    objects: int
    evidence: str

    def to_json(self) -> dict[str, Any]:
        return {"objects": self.objects, "evidence": self.evidence}
