"""The stages as the pipeline runs them: each reads the bid's encrypted files and writes its results.

Each function here is a thin adapter between the object store / database and a pure stage core
(:func:`bidproc.intake.inspect.inspect`, :func:`bidproc.signature.validate.validate_files`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO, cast

from bidproc.archive.evidence import archive_bid
from bidproc.archive.store import StoredObject
from bidproc.config import Settings
from bidproc.domain import Document, Receipt, Verdict
from bidproc.encryption.stream import DecryptingReader, encrypt_bytes
from bidproc.errors import BidprocError, Code
from bidproc.intake.inspect import FileVerdict, inspect
from bidproc.intake.limits import IntakeLimits
from bidproc.pipeline.outcomes import ArchiveOutcome, DocumentOutcome, SignatureOutcome, SignedDocument
from bidproc.runtime import Runtime
from bidproc.signature.report import ValidationReport
from bidproc.signature.validate import validate_files

log = logging.getLogger(__name__)

# Signature validation holds documents in memory (pyhanko and signxml work on bytes): bigger files, and
# files beyond the total, are listed as not validated rather than risk the worker's memory.
MAX_SIGNED_DOCUMENT_BYTES = 256 << 20
MAX_SIGNATURE_STAGE_BYTES = 1 << 30


def opener(rt: Runtime, key: bytes, object_key: str) -> BinaryIO:
    reader = DecryptingReader(key, StoredObject(rt.store, object_key), context=object_key.encode())
    return cast(BinaryIO, reader)


def put_encrypted(rt: Runtime, key: bytes, object_key: str, data: bytes) -> None:
    rt.store.put_bytes(object_key, encrypt_bytes(key, data, context=object_key.encode()))


def intake_document(rt: Runtime, key: bytes, doc: Document, prefix: str, limits: IntakeLimits) -> DocumentOutcome:
    """Inspect one document; store its renditions encrypted; return what the documents row records."""
    verdict: FileVerdict = inspect(doc.name, lambda: opener(rt, key, doc.object_key), rt.scanner, limits)
    if verdict.sha256 != doc.sha256:  # the stored object is not the file the receipt lists
        raise BidprocError(Code.STORAGE_INTEGRITY, f"{doc.object_key} does not hash to the received {doc.sha256}")
    renditions = []
    for r in verdict.renditions:
        object_key = f"{prefix}/renditions/{doc.id}/{hashlib.sha256(r.name.encode()).hexdigest()[:16]}.enc"
        put_encrypted(rt, key, object_key, r.data)
        renditions.append({**r.to_json(), "object_key": object_key})
    return DocumentOutcome.inspected(verdict, renditions)


def intake_in_sandbox(settings: Settings, key: bytes, limits: IntakeLimits) -> Callable[[Any], DocumentOutcome]:
    """The document sandbox's task (:class:`bidproc.sandbox.document.DocumentSandbox`): set up once in
    the child, then called with ``(document, prefix)`` for each document of the bid."""
    rt = Runtime(settings)  # the store and clamd only: the child never touches the database

    def one(request: tuple[Document, str]) -> DocumentOutcome:
        doc, prefix = request
        return intake_document(rt, key, doc, prefix, limits)

    return one


def signature_reports(
    rt: Runtime, key: bytes, docs: Sequence[Document], receipt: Receipt, prefix: str
) -> SignatureOutcome:
    """Validate every signature in the bid's accepted documents; store each report encrypted."""
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    held = 0
    # Signatures and small documents first, so that a large annex cannot crowd out what they sign.
    for doc in sorted(docs, key=lambda d: d.size):
        if doc.verdict is not Verdict.ACCEPTED:
            continue
        if doc.size > MAX_SIGNED_DOCUMENT_BYTES or held + doc.size > MAX_SIGNATURE_STAGE_BYTES:
            skipped.append(doc.name)
            continue
        files[doc.name] = opener(rt, key, doc.object_key).read()
        held += doc.size
    # The deposit's RFC 3161 timestamp is a proof of existence for every file the receipt lists.
    received = json.loads(receipt.body)
    from asn1crypto import tsp

    token_time = (
        tsp.TimeStampResp.load(receipt.timestamp_token)["time_stamp_token"]["content"]["encap_content_info"]["content"]
        .parsed["gen_time"]
        .native
    )
    poe = tuple((f["sha256"], token_time) for f in received["files"])
    policy = rt.validation_policy(proofs_of_existence=poe)
    now = rt.clock()  # one validation time for every file of the bid and its reports
    reports: dict[str, ValidationReport] = validate_files(files, policy, now) if files else {}
    signed: dict[str, SignedDocument] = {}
    by_name = {d.name: d for d in docs}
    for name, report in reports.items():
        doc = by_name[name]
        object_key = report_key(prefix, doc.id, "json")
        body = json.dumps(report.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        put_encrypted(rt, key, object_key, body)
        forms = ["json"]
        for fmt, rendered in report_forms(rt, report, files[name], files, now).items():
            put_encrypted(rt, key, report_key(prefix, doc.id, fmt), rendered)
            forms.append(fmt)
        indications = tuple(s.indication.value for s in report.signatures)
        signed[name] = SignedDocument(object_key, tuple(forms), report.bottom_line, indications)
    return SignatureOutcome(signed, tuple(skipped))


def report_key(prefix: str, doc_id: str, fmt: str) -> str:
    """Where the report of one document is stored in one form (json, xml, html, pdf), encrypted."""
    return f"{prefix}/reports/{doc_id}.{fmt}.enc"


def report_forms(
    rt: Runtime, report: ValidationReport, data: bytes, files: dict[str, bytes], now: datetime
) -> dict[str, bytes]:
    """The report as a lawyer files it: ETSI XML, French HTML and the PDF sealed by the service.

    A form that cannot be rendered (e.g. the PDF engine missing on this machine) is logged and left out
    (``forms`` in the stage's summary says which exist): the verdict itself is in the JSON already.
    """
    from bidproc.signature.reports.etsi_xml import render_xml
    from bidproc.signature.reports.html import render_html
    from bidproc.signature.reports.pdf import render_sealed_pdf
    from bidproc.signature.reports.subject import Subject

    detached = {n: d for n, d in files.items() if n != report.subject}
    subject = Subject.of(report, data, now, detached)
    out: dict[str, bytes] = {}
    renderers: dict[str, Callable[[], bytes]] = {
        "xml": lambda: render_xml(subject),
        "html": lambda: render_html(subject, "fr").encode("utf-8"),
        "pdf": lambda: render_sealed_pdf(subject, "fr", rt.local_pki, rt.tsa, tsa_roots=rt.tsa_roots),
    }
    for fmt, render in renderers.items():
        try:
            out[fmt] = render()
        except Exception:
            log.exception("the %s form of the report on %s could not be rendered", fmt, report.subject)
    return out


def archive_manifest(
    rt: Runtime, docs: Sequence[Document], receipt: Receipt, prefix: str, stages: dict[str, Any]
) -> ArchiveOutcome:
    """Put the receipt and a manifest of every stored object next to the bid's encrypted files."""
    rt.store.put_bytes(f"{prefix}/receipt.json", receipt.body)
    rt.store.put_bytes(f"{prefix}/receipt.tsr", receipt.timestamp_token)
    rt.store.put_bytes(f"{prefix}/receipt.p7s", receipt.seal)
    objects = []
    for key in sorted(rt.store.keys(prefix + "/")):
        if key.endswith("/manifest.json"):
            continue
        objects.append({"key": key, "sha256": _object_sha256(rt, key)})
    manifest = {
        "type": "bidproc.bid-manifest",
        "version": 1,
        "receipt_sha256": hashlib.sha256(receipt.body).hexdigest(),
        "documents": [
            {
                "id": d.id,
                "name": d.name,
                "size": d.size,
                "sha256": d.sha256,
                "verdict": d.verdict.value,
                "code": d.code.value if d.code is not None else None,
                "object_key": d.object_key,
            }
            for d in docs
        ],
        "objects": objects,
        "stages": stages,
    }
    rt.store.put_bytes(f"{prefix}/manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    # The sealed, timestamped, retention-locked evidence package of all of the above (idempotent).
    package = archive_bid(rt, json.loads(receipt.body)["consultation"]["id"], receipt.bid_id, receipt.body)
    return ArchiveOutcome(len(objects), package.prefix)


def _object_sha256(rt: Runtime, key: str, step: int = 8 << 20) -> str:
    """SHA-256 of a stored object, read in ranges so memory does not grow with its size."""
    digest, size, offset = hashlib.sha256(), rt.store.size(key), 0
    while offset < size:
        piece = rt.store.read_at(key, offset, min(step, size - offset))
        if not piece:
            break
        digest.update(piece)
        offset += len(piece)
    return digest.hexdigest()
