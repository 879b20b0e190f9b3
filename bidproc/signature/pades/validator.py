"""PAdES: every signature and document timestamp of every revision of a PDF, validated per EN 319 102-1.

pyhanko does the validation (``pyhanko.sign.validation.ades``, chosen by the level the signature
claims, see :mod:`.evidence`); the verdict after it is the EN 319 102-1 step shared with CAdES
(:mod:`bidproc.signature.decision`); this module adds what the PDF needs: the per-revision list of changes after
each signature (:mod:`.modifications`), naming the known PDF attacks, and the rule that a signature is
never TOTAL_PASSED when what a reader sees changed after it outside the signer's permissions.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel

from bidproc.errors import Warning_
from bidproc.signature.context import Context
from bidproc.signature.decision import Evidence, decide
from bidproc.signature.french import with_french_rule
from bidproc.signature.outcome import claimed_time, indication_for_exception, offline_warning, path_errors, signer_of
from bidproc.signature.pades.evidence import PdfFacts, pdf_facts, times, validated
from bidproc.signature.pades.levels import ARCHIVE_DETAIL
from bidproc.signature.pades.modifications import signed_revision_text
from bidproc.signature.pades.rawpdf import raw_signatures
from bidproc.signature.pades.tail import (
    explain_failed,
    hidden_objects,
    parsed_end,
    readable_prefix,
    repointed,
    signed_end_of,
    tail_modifications,
)
from bidproc.signature.report import Indication, Modification, SignatureFormat, SignatureReport, SubIndication


def _fields(reader: PdfFileReader) -> list[tuple[str, generic.DictionaryObject]]:
    return [(name, ref.get_object()) for name, _value, ref in enumerate_sig_fields(reader, filled_status=True)]


MAX_REVISIONS = 1000  # incremental updates of one PDF
MAX_DIFF_WORK = 5000  # signatures x revisions: the difference analysis compares each pair
MAX_SIGNATURES = 50  # per PDF; beyond, one failed report stands for the rest (diff analysis is per pair)


async def _validate_one(
    name: str,
    data: bytes,
    reader: PdfFileReader,
    sig: EmbeddedPdfSignature,
    all_sigs: list[EmbeddedPdfSignature],
    ctx: Context,
    tail: tuple[Modification, ...] = (),
) -> SignatureReport:
    """Gather the evidence (:mod:`.evidence`), decide (:mod:`..decision`, then the PDF's own gates),
    assemble the report."""
    facts = await pdf_facts(data, reader, sig, all_sigs, ctx, tail)
    result, seen = await validated(sig, facts, ctx)
    status = result.api_status
    stamps, best, proven = times(sig, facts, status, result, ctx)
    signer_cert = status.signing_cert if facts.level is not None and status is not None else None
    evidence = Evidence(
        result=result,
        level=facts.level,
        proven=proven,
        signer_cert=signer_cert,
        knowledge=ctx.spec_for(sig.signer_info["signature"].native, None, facts.embedded).local_knowledge,
        own_data=facts.embedded,
        signed_certs=[c.chosen for c in sig.signed_data["certificates"] or []],
        seen=seen,
        signer_info=sig.signer_info if facts.level is not None else None,
    )
    decision = await decide(evidence, ctx)
    indication, sub = _pdf_gates(decision.indication, decision.subindication, status, facts, sig)
    warnings = [*facts.warnings, *decision.warnings]
    if facts.range_problems:
        warnings.append(Warning_.PDF_BYTE_RANGE_INVALID.value)
    errors = (result.failure_msg,) if result.failure_msg and indication is not Indication.TOTAL_PASSED else ()
    errors = (*errors, *decision.errors, *(f"/ByteRange: {p}" for p in facts.range_problems))
    report = SignatureReport(
        file=name,
        format=SignatureFormat.PADES,
        indication=indication,
        subindication=sub,
        level=decision.level,
        signer=None if facts.timestamp_only else signer_of(sig.signer_cert),
        signature_id=str(sig.field_name),
        signing_time=claimed_time(status) or sig.self_reported_timestamp,
        best_signature_time=best,
        timestamps=tuple(stamps),
        signed_data=(signed_revision_text(reader, sig.signed_revision),),
        modifications=facts.mods,
        warnings=(*warnings, *offline_warning(ctx.policy.offline, sub)),
        errors=errors,
    )
    return with_french_rule(report, decision.subindication, status.intact if status is not None else None)


def _pdf_gates(
    indication: Indication, sub: SubIndication | None, status: Any, facts: PdfFacts, sig: EmbeddedPdfSignature
) -> tuple[Indication, SubIndication | None]:
    """What the PDF adds to the EN 319 102-1 decision: pyhanko's AdES functions do not look at byte
    ranges, coverage, DocMDP or what changed after signing."""
    if facts.range_problems:  # not the signature's own /Contents left out, or another signature's gap too
        if indication is not Indication.TOTAL_FAILED:
            return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
        return indication, sub
    tampered = any(not m.allowed for m in facts.mods)
    if indication is Indication.TOTAL_PASSED:
        if status is not None and not status.intact:
            return Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE
        if status is not None and not status.valid:
            return Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE
        if (
            tampered
            or Warning_.PDF_SIGNATURE_WRAPPING in facts.warnings
            or (not facts.is_doc_ts and not facts.allowed and sig.coverage != SignatureCoverageLevel.ENTIRE_FILE)
        ):
            return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
        if getattr(status, "seed_value_ok", True) is False:  # the field's seed value constraints
            return Indication.INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE
        if getattr(status, "bottom_line", True) is False:  # pyhanko's own summary must agree, always
            return Indication.INDETERMINATE, SubIndication.GENERIC
    elif indication is Indication.INDETERMINATE and tampered:
        # whoever signed, the document a reader sees is not the one signed: that is decided already
        return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
    return indication, sub


async def validate_pdf(name: str, data: bytes, ctx: Context) -> list[SignatureReport]:
    """A report per signature and document timestamp; an unreadable one is reported, never skipped."""
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        found = _fields(reader)
    except Exception as exc:  # the signed revisions may still parse, with unreadable bytes after them
        prefix = readable_prefix(data)
        if prefix is None:  # too damaged for pyhanko: check the byte ranges by hand
            return raw_signatures(name, data, f"{type(exc).__name__}: {exc}")
        reader = prefix[0]
        found = _fields(reader)
    # bytes after the last revision pyhanko parsed: what tolerant readers show may not be what was signed
    end = parsed_end(reader, data)
    tail = tail_modifications(data, end, reader.xrefs.total_revisions)
    sigs: list[EmbeddedPdfSignature] = []
    reports: list[SignatureReport] = []
    revisions = reader.xrefs.total_revisions
    if revisions > MAX_REVISIONS or len(found) * revisions > MAX_DIFF_WORK:
        # what changed after each signature is compared revision by revision: bounded work only
        why = f"{len(found)} signatures over {revisions} revisions: more than this service analyses"
        return [_failed(name, "all", ValueError(why), None, unreadable=True)]
    if len(found) > MAX_SIGNATURES:  # hostile: each signature costs a full validation
        reports.append(
            _failed(
                name, f"{len(found) - MAX_SIGNATURES} more", ValueError("too many signatures"), None, unreadable=True
            )
        )
        found = found[:MAX_SIGNATURES]
    for field_name, field in found:
        try:
            sigs.append(EmbeddedPdfSignature(reader, field, field_name))
        except Exception as exc:  # a signature dictionary we cannot even read: universal signature forgery
            reports.append(_failed(name, field_name, exc, None, unreadable=True))
    sigs.sort(key=lambda s: s.signed_revision)
    if sigs:  # objects only a reader rebuilding the xref sees, in revisions after the first signature
        tail += hidden_objects(reader, data, sigs[0].signed_revision, end)
    for sig in sigs:
        after = tuple(m for m in tail if m.revision > sig.signed_revision)
        after += repointed(reader, data, sig.signed_revision, signed_end_of(sig.byte_range))
        try:
            with path_errors():  # also keeps pyhanko's diff-analysis tracebacks out of the logs: reported
                reports.append(await _validate_one(name, data, reader, sig, sigs, ctx, after))
        except Exception as exc:  # e.g. a later revision the strict parser refuses: say what changed
            failed = _failed(name, str(sig.field_name), exc, sig, unreadable=False)
            reports.append(explain_failed(failed, data, signed_end_of(sig.byte_range), known=after))
    return _link_archive_stamps(reports)


def _failed(
    name: str, field_name: str, exc: Exception, sig: EmbeddedPdfSignature | None, unreadable: bool
) -> SignatureReport:
    """The report of a signature whose validation raised (the verdict comes from the one mapping)."""
    ind, sub, msg = indication_for_exception(exc)
    if unreadable:  # not even a signature dictionary: whatever the error, the format failed
        ind, sub = Indication.TOTAL_FAILED, sub if ind is Indication.TOTAL_FAILED else SubIndication.FORMAT_FAILURE
    try:
        signer = signer_of(sig.signer_cert) if sig is not None else None
    except Exception:  # no certificate to name: the verdict says so already
        signer = None
    usf = (Warning_.PDF_UNIVERSAL_SIGNATURE_FORGERY.value,) if ind is Indication.TOTAL_FAILED else ()
    return SignatureReport(
        file=name,
        format=SignatureFormat.PADES,
        indication=ind,
        subindication=sub,
        signer=signer,
        signature_id=field_name,
        warnings=usf,
        errors=(msg,),
    )


def _link_archive_stamps(reports: list[SignatureReport]) -> list[SignatureReport]:
    """A document timestamp that protects a signature is reported as that signature's archive timestamp
    (EN 319 102-1 §5.6: ``kind="archive"``, valid from its own validation), not as a signature of its own.

    One that protects no signature (a PDF only timestamped, or timestamped before it was signed) keeps
    its own entry: its verdict is the timestamp's, ``signer`` is empty and ``pdf.timestamp_only`` says why.
    """
    protecting = {t.detail for r in reports for t in r.timestamps if t.kind == "archive"}
    return [r for r in reports if f"{ARCHIVE_DETAIL}{r.signature_id}" not in protecting]
