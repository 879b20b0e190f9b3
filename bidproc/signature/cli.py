"""``bidproc verify FILE``: the signature validation report of one file, as JSON, text, ETSI XML,
HTML or a sealed PDF (``bidproc.signature.reports``).

Exit codes (DESIGN.md): 0 every signature TOTAL_PASSED, 1 a signature did not pass or none was
found, 2 usage or environment error (bad arguments, unreadable file or trust anchor).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import pem

from bidproc.cli import usage_error
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import SignatureReport, ValidationReport
from bidproc.signature.trust.cli import trust_options
from bidproc.signature.trust.source import anchors_from, trust_settings
from bidproc.signature.validate import validate_file

CONTRACT = (
    "format",
    "level",
    "indication",
    "subindication",
    "signer",
    "qualification",
    "signing_time",
    "best_signature_time",
    "timestamps",
    "modifications",
    "warnings",
    "french_rule",
)


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bidproc verify", description="Validate the signatures of a file.")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--detached-data",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a file a detached signature may sign (repeatable)",
    )
    p.add_argument(
        "--trust-anchor",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="a trusted root certificate, PEM or DER (repeatable); the OS store is never used",
    )
    p.add_argument(
        "--lotl",
        metavar="FILE|URL",
        help="EU list of trusted lists: its national lists give the qualified status (a URL is cached)",
    )
    p.add_argument(
        "--trusted-list",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a national trusted list (verified against the signers the LOTL announces for it; repeatable)",
    )
    p.add_argument("--at", help="validation time, ISO 8601 (default: now)")
    p.add_argument(
        "--offline",
        action="store_true",
        help=(
            "no network: only revocation data embedded in the signature counts (B-B and B-T signatures "
            "then come out INDETERMINATE/TRY_LATER with a signature.offline_no_revocation warning)"
        ),
    )
    p.add_argument(
        "--format",
        choices=("json", "text", "xml", "html", "pdf"),
        default="json",
        help="xml: ETSI TS 119 102-2; html, pdf: for a lawyer (the PDF is sealed by the service)",
    )
    p.add_argument("--lang", choices=("fr", "en"), default="fr", help="language of the html and pdf reports")
    p.add_argument("-o", "--output", type=Path, metavar="OUT")
    return p


def _anchors(paths: list[Path]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read trust anchor {path}: {exc.strerror}") from exc
        if pem.detect(data):
            out += [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
        else:
            out.append(data)
    return tuple(out)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--at: not an ISO 8601 time: {value!r}") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def signature_json(sig: SignatureReport) -> dict[str, Any]:
    """The DESIGN.md contract first, then the rest of the report (file, id, signed data, errors)."""
    full = sig.to_json()
    return {**{k: full[k] for k in CONTRACT}, **{k: v for k, v in full.items() if k not in CONTRACT}}


def render_text(report: ValidationReport) -> str:
    lines = [f"{report.subject}: {'PASSED' if report.bottom_line else 'NOT PASSED'}"]
    lines += [f"  problem: {p}" for p in report.problems]
    for s in report.signatures:
        sub = f"/{s.subindication.value}" if s.subindication else ""
        who = s.signer.subject if s.signer else "unknown signer"
        lines.append(
            f"- {s.format.value} {s.level.value if s.level else '-'} {s.signature_id or ''}: {s.indication.value}{sub}"
        )
        lines.append(f"    signer: {who}")
        lines.append(f"    qualification: {s.qualification.value}")
        lines += [f"      {d}" for d in s.qualification_details]
        lines.append(f"    best signature time: {s.best_signature_time.isoformat() if s.best_signature_time else '-'}")
        lines += [
            f"    timestamp: {t.kind} {t.time.isoformat()} {'valid' if t.valid else 'NOT valid'}" for t in s.timestamps
        ]
        lines += [
            f"    changed after signing (revision {m.revision}): {m.kind} - {m.detail}"
            f" [{'allowed' if m.allowed else 'NOT allowed'}]"
            for m in s.modifications
        ]
        lines += [f"    warning: {w}" for w in s.warnings]
        lines += [f"    error: {e}" for e in s.errors]
        if s.french_rule is not None:
            failed = ", ".join(s.french_rule.failed) or "none"
            verdict = "compliant" if s.french_rule.compliant else "NOT compliant"
            lines.append(f"    French rule (arrêté 22/03/2019): {verdict}; failed points: {failed}")
            lines += [f"      {d}" for d in s.french_rule.details]
    return "\n".join(lines) + "\n"


def _document(fmt: str, lang: str, report: ValidationReport, data: bytes, at: datetime, detached: Any) -> bytes:
    """The xml, html or (sealed) pdf report; imported here, so plain JSON runs never load Jinja2 or Pango."""
    from bidproc.signature.reports.etsi_xml import render_xml
    from bidproc.signature.reports.html import render_html
    from bidproc.signature.reports.subject import Subject

    subject = Subject.of(report, data, at, detached)
    language: Any = lang  # argparse's choices keep it to "fr" or "en"
    if fmt == "xml":
        return render_xml(subject)
    if fmt == "html":
        return render_html(subject, language).encode("utf-8")
    from bidproc.config import load_settings
    from bidproc.errors import BidprocError
    from bidproc.runtime import Runtime
    from bidproc.signature.reports.pdf import render_sealed_pdf

    try:  # the service's own seal and TSA, as configured (the embedded local PKI by default)
        runtime = Runtime(load_settings())
        return render_sealed_pdf(subject, language, runtime.local_pki, runtime.tsa, tsa_roots=runtime.tsa_roots)
    except (BidprocError, OSError) as exc:
        raise UsageError(f"cannot seal the PDF report: {exc}") from exc


def main(argv: list[str]) -> int:
    if "--serve" in argv:  # the verification page, on this machine (bidproc.signature.serve)
        from bidproc.signature.serve import main as serve

        return serve(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage
        return 0 if exc.code == 0 else 2
    try:
        data = args.file.read_bytes()
        detached = {p.name: p.read_bytes() for p in args.detached_data}
        at = _time(args.at)
        trust = trust_settings(trust_options(args.lotl, args.trusted_list, args.offline), at)
        anchors = _anchors(args.trust_anchor) + anchors_from(trust.lists)
        policy = ValidationPolicy(trust_anchors=anchors, at=at, offline=args.offline, trust=trust)
    except UsageError as exc:
        return usage_error("bidproc verify", exc)
    except OSError as exc:
        return usage_error("bidproc verify", f"cannot read {exc.filename}: {exc.strerror}")
    checked = policy.at or datetime.now(UTC)  # the CLI reads the clock once: validation and report time
    report = validate_file(args.file.name, data, policy, detached, now=checked)
    if args.format in {"xml", "html", "pdf"}:
        try:
            out = _document(args.format, args.lang, report, data, checked, detached)
        except UsageError as exc:
            return usage_error("bidproc verify", exc)
        if args.output:
            args.output.write_bytes(out)
        else:
            sys.stdout.buffer.write(out)
        return 0 if report.bottom_line else 1
    if args.format == "json":
        doc = {
            "subject": report.subject,
            "bottom_line": report.bottom_line,
            "problems": list(report.problems),
            "signatures": [signature_json(s) for s in report.signatures],
        }
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    else:
        text = render_text(report)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0 if report.bottom_line else 1
