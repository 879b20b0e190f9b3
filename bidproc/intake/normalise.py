"""Reading renditions of PDFs, made in the parser sandbox, and macro spotting in office files.

The rendition is a derived artifact for reading only: its own hash, linked to the original by the
original's hash, the list of what was done to it. The original stays the document of record (and,
for a signed PDF, the only thing whose signature means anything).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from bidproc.errors import BidprocError, Code, Warning_
from bidproc.intake.limits import IntakeLimits
from bidproc.intake.pdfclean import pack_request
from bidproc.intake.verdict import Rendition
from bidproc.sandbox import SandboxFailure
from bidproc.sandbox.parser import ParserLimits, run_parser

# OLE2 directory entry names are UTF-16LE: the stream every VBA project of a .doc/.xls/.ppt has.
# (Not "Macros": Word keeps its text in UTF-16LE too, so an ordinary word would match.)
OLE_MACRO_MARKERS = ("_VBA_PROJECT".encode("utf-16-le"),)


@dataclass
class PdfOutcome:
    code: Code | None = None  # pdf.encrypted, pdf.malformed, parse.timeout, parse.crashed
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    rendition: Rendition | None = None
    attachments: list[tuple[str, bytes]] = field(default_factory=list)


def rendition_name(name: str) -> str:
    path = PurePosixPath(name)
    return f"{path.stem}.rendition.pdf"


def normalise_pdf(name: str, data: bytes, source_sha256: str, limits: IntakeLimits) -> PdfOutcome:
    bounds = ParserLimits(
        cpu_seconds=limits.parse_timeout_seconds,
        memory_bytes=limits.parse_memory_bytes,
        wall_seconds=limits.parse_timeout_seconds,
        max_reply_bytes=limits.max_normalise_bytes * 4 + limits.max_attachment_bytes,
    )
    request = pack_request(data, {"max_attachment_bytes": limits.max_attachment_bytes})
    try:
        header, blobs = run_parser("bidproc.intake.pdfclean:normalise_task", request, bounds)
    except SandboxFailure as failure:
        if not failure.on_input:
            raise BidprocError(failure.code, failure.message) from failure
        return PdfOutcome(code=failure.code, message=failure.message)
    status = header.get("status")
    if status == "encrypted":
        return PdfOutcome(code=Code.PDF_ENCRYPTED, message="the PDF needs a password to be read")
    if status != "ok" or not blobs:
        problems = "; ".join(str(p) for p in header.get("problems", []))
        return PdfOutcome(code=Code.PDF_MALFORMED, message=f"the PDF cannot be repaired: {problems}"[:1000])
    outcome = PdfOutcome()
    actions: list[str] = []
    if header.get("repaired"):
        outcome.warnings.append(Warning_.PDF_REPAIRED.value)
        actions.append("repaired")
        outcome.message = "; ".join(str(p) for p in header.get("problems", []))[:1000]
    removed: Sequence[str] = header.get("removed", [])
    if removed:
        outcome.warnings.append(Warning_.PDF_ACTIVE_CONTENT.value)
        actions += [f"removed:{r}" for r in removed]
    if header.get("signed"):
        outcome.warnings.append(Warning_.PDF_SIGNED.value)
        actions.append("signature-not-preserved")  # the rendition is for reading; the original is signed
    if header.get("linearised"):
        actions.append("linearised")
    attachment_names = [str(n) for n in header.get("attachments", [])]
    outcome.attachments = list(zip(attachment_names, blobs[1:], strict=False))
    if outcome.attachments:
        outcome.warnings.append(Warning_.PDF_ATTACHMENTS.value)
    rendition = blobs[0]
    outcome.rendition = Rendition(
        name=rendition_name(name),
        media_type="application/pdf",
        sha256=hashlib.sha256(rendition).hexdigest(),
        source_sha256=source_sha256,
        actions=tuple(actions),
        data=rendition,
    )
    return outcome


def ooxml_or_odf_has_macros(names: Sequence[str]) -> bool:
    for name in names:
        lower = name.lower()
        if lower.endswith("vbaproject.bin") or lower.endswith("vbadata.xml"):
            return True
        if lower.startswith(("basic/", "scripts/")) and not name.endswith("/"):
            return True
    return False
