"""What intake decides about one file: the verdict, its evidence, and the reading renditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bidproc.domain import Verdict


@dataclass(frozen=True)
class MalwareTrace:
    """The trace French rules ask us to keep of malware: where, what, and which exact bytes."""

    path: str  # the uploaded file's name, then member names: "offre.zip/annexes/x.doc"
    signature: str  # clamd's signature name
    sha256: str  # of the infected stream (the member, or the whole file)


@dataclass(frozen=True)
class Rendition:
    """A derived, reading-only copy (a cleaned PDF); the original stays the document of record."""

    name: str
    media_type: str
    sha256: str
    source_sha256: str  # the original this was derived from
    actions: tuple[str, ...]  # what was done to make it: "repaired", "removed:/OpenAction", ...
    data: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "media_type": self.media_type,
            "sha256": self.sha256,
            "source_sha256": self.source_sha256,
            "actions": list(self.actions),
        }


_SEVERITY = {Verdict.ACCEPTED: 0, Verdict.PENDING: 1, Verdict.REJECTED: 2, Verdict.QUARANTINED: 3}


def worst(a: Verdict, b: Verdict) -> Verdict:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


@dataclass(frozen=True)
class FileVerdict:
    file: str
    sha256: str
    size: int
    media_type: str
    kind: str
    verdict: Verdict
    code: str | None
    warnings: tuple[str, ...] = ()
    members: tuple[FileVerdict, ...] = ()
    renditions: tuple[Rendition, ...] = ()
    # every malware found in this file or any of its members, however deep
    malware: tuple[MalwareTrace, ...] = ()
    # for humans: why the code was given (not part of the stable contract)
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    def to_json(self) -> dict[str, Any]:
        """The ``bidproc check`` contract (DESIGN.md): renditions without their bytes."""
        out: dict[str, Any] = {
            "file": self.file,
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "kind": self.kind,
            "verdict": self.verdict.value,
            "code": self.code,
            "warnings": list(self.warnings),
            "members": [m.to_json() for m in self.members],
            "renditions": [r.to_json() for r in self.renditions],
        }
        if self.message:
            out["message"] = self.message
        if self.malware:
            out["malware"] = [{"path": t.path, "signature": t.signature, "sha256": t.sha256} for t in self.malware]
        return out
