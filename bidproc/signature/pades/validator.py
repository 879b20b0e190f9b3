"""PAdES: every signature and document timestamp of every revision of a PDF, validated per EN 319 102-1.

pyhanko does the validation (``pyhanko.sign.validation.ades``, chosen by the level the signature
claims, see :func:`_level`); this module adds what it lacks: the per-revision list of changes after
each signature (:mod:`.modifications`), naming the known PDF attacks, and the rule that a signature is
never TOTAL_PASSED when what a reader sees changed after it outside the signer's permissions.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, SuspiciousModification
from pyhanko.sign.fields import MDPPerm, enumerate_sig_fields
from pyhanko.sign.validation import ades
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, read_certification_data
from pyhanko.sign.validation.policy_decl import PdfSignatureValidationSpec
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel

from bidproc.errors import Warning_
from bidproc.signature.context import Context
from bidproc.signature.expiry import recheck_expired_signer, validation_data_gap
from bidproc.signature.french import with_french_rule
from bidproc.signature.outcome import (
    check_digest_algorithm,
    claimed_time,
    embedded_timestamps,
    indication_for_exception,
    indication_of,
    offline_warning,
    path_errors,
    refine,
    signer_of,
    timestamp_info,
)
from bidproc.signature.pades import byte_ranges
from bidproc.signature.pades.levels import (
    ARCHIVE_DETAIL,
    archive_stamps,
    doc_timestamp,
    embedded_validation_data,
    pdf_level,
)
from bidproc.signature.pades.modifications import modifications_after, name_attacks, signed_revision_text
from bidproc.signature.pades.rawpdf import raw_signatures
from bidproc.signature.pades.tail import (
    changes_after,
    explain_failed,
    hidden_objects,
    parsed_end,
    readable_prefix,
    repointed,
    signature_baseline,
    signed_end_of,
    tail_modifications,
)
from bidproc.signature.report import (
    Indication,
    Level,
    Modification,
    SignatureFormat,
    SignatureReport,
    SubIndication,
    TimestampInfo,
)


def _fields(reader: PdfFileReader) -> list[tuple[str, generic.DictionaryObject]]:
    return [(name, ref.get_object()) for name, _value, ref in enumerate_sig_fields(reader, filled_status=True)]


async def _ades(sig: EmbeddedPdfSignature, level: Level, ctx: Context, poe: Any) -> Any:
    """Run the EN 319 102-1 process matching ``level``.

    ``ades_lta_validation`` reads the DSS and the document timestamps (past validation with POE) but
    answers NO_POE when no document timestamp follows: B-B uses basic, B-T and B-LT with-time (B-LT
    with the DSS content as local knowledge), B-LTA the LTA process.
    """
    # B-LT without a document timestamp: the DSS / Adobe revocation attribute is the validation data
    # (pyhanko reads it only inside ades_lta_validation; its readers are private but pinned with 0.38.*)
    extra = embedded_validation_data(sig) if level is Level.B_LT else None
    spec = ctx.spec_for(sig.signer_info["signature"].native, poe, extra)
    if level is Level.B_B:
        # basic validation builds a plain CMS status whatever status class it is given: no PDF kwargs
        return await ades.ades_basic_validation(
            sig.signed_data, spec, timing_info=ctx.timing(), raw_digest=sig.compute_digest()
        )
    kwargs: dict[str, Any] = dict(
        timing_info=ctx.timing(),
        raw_digest=sig.compute_digest(),
        extra_status_kwargs=sig.summarise_integrity_info(),
        status_cls=PdfSignatureStatus,
    )
    if level in {Level.B_T, Level.B_LT}:
        return await ades.ades_with_time_validation(sig.signed_data, spec, **kwargs)
    return await ades.ades_lta_validation(sig, PdfSignatureValidationSpec(spec), timing_info=ctx.timing())


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
    is_doc_ts = sig.sig_object_type == "/DocTimeStamp"
    base = SignatureReport(
        file=name,
        format=SignatureFormat.PADES,
        indication=Indication.INDETERMINATE,
        signature_id=str(sig.field_name),
        signed_data=(signed_revision_text(reader, sig.signed_revision),),
    )
    check_digest_algorithm(sig.md_algorithm)  # else pyhanko fails deep inside with an AttributeError
    sig.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)  # type: ignore[no-untyped-call]
    doc_ts_revs = [s.signed_revision for s in all_sigs if s.sig_object_type == "/DocTimeStamp"]
    later = {
        s.signed_revision: ("document timestamp " if s.sig_object_type == "/DocTimeStamp" else "signature ")
        + str(s.field_name)
        for s in all_sigs
        if s.signed_revision > sig.signed_revision
    }
    integrity = sig.summarise_integrity_info()
    diff = integrity["diff_result"]
    allowed = bool(integrity["docmdp_ok"]) and isinstance(diff, DiffResult)
    certification = read_certification_data(reader)
    annotations_ok = certification is not None and certification.permission is MDPPerm.ANNOTATE
    mods = modifications_after(reader, sig.signed_revision, later, allowed, annotations_ok) + tail
    wrapped = sig.coverage is not None and sig.coverage < SignatureCoverageLevel.ENTIRE_REVISION
    if wrapped and not any(not m.allowed for m in mods):  # e.g. its dictionary redefined: say what changed
        mods += changes_after(data, *signature_baseline(reader, data, sig))
    range_problems = byte_ranges.problems(reader, sig, all_sigs[: all_sigs.index(sig)])
    certifying = [s for s in all_sigs if s.docmdp_level is not None]
    certified_first = not certifying or min(s.signed_revision for s in all_sigs) == certifying[0].signed_revision
    warnings = name_attacks(mods, wrapped, sig.docmdp_level is not None, certified_first)
    subfilter = sig.sig_object.get("/SubFilter")
    if not is_doc_ts and subfilter != "/ETSI.CAdES.detached":  # e.g. adbe.pkcs7.detached: PDF, not PAdES baseline
        warnings.append(f"{Warning_.PDF_NOT_PADES_BASELINE.value}: SubFilter {subfilter}")
    if isinstance(diff, SuspiciousModification):
        warnings.append(f"{Warning_.PDF_DIFF_ANALYSIS.value}: {diff}")
    poe = ctx.deposit_poe(hashlib.sha256(data).hexdigest())
    level = None if is_doc_ts else pdf_level(sig, reader, doc_ts_revs)
    archive: list[TimestampInfo] = []
    if not is_doc_ts:
        archive, archive_warnings = await archive_stamps(sig, all_sigs, ctx)
        warnings += archive_warnings
        if level is Level.B_LTA and not any(t.valid for t in archive):
            # EN 319 142-1 B-LTA is the document timestamp *and* its validation: none held, so the
            # signature is what its other material makes it (validated as B-LT with the DSS)
            level = Level.B_LT
            warnings.append(
                f"{Warning_.PADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED.value}: no document timestamp validated: level B-LT"
            )
    timestamp_only = is_doc_ts and not any(
        s.sig_object_type != "/DocTimeStamp" and s.signed_revision < sig.signed_revision for s in all_sigs
    )
    if timestamp_only:  # reported on its own, and its TSA is no signer (French rule: no signer identity)
        warnings.append(
            f"{Warning_.PDF_TIMESTAMP_ONLY.value}: a document timestamp protecting no signature: it proves "
            "this revision existed at its time; it is not a signature and names no signer"
        )
    with path_errors() as seen:
        if level is None:
            result, ts_seen = await doc_timestamp(sig, ctx)
            seen += ts_seen
        else:
            result = await _ades(sig, level, ctx, poe)
            passed = indication_of(result.ades_subindic)[0] is Indication.TOTAL_PASSED
            if level is Level.B_LTA and not passed and not all(t.valid for t in archive):
                # pyhanko's LTA process takes the document timestamps as one evidence record: one broken
                # timestamp drops every proof of existence, and a signature valid today ends NO_POE.
                # The B-LT process (the DSS, at the validation time) is then the one that can conclude.
                result = await _ades(sig, Level.B_LT, ctx, poe)
    indication, sub = indication_of(result.ades_subindic)
    status = result.api_status
    stamps: list[TimestampInfo] = []
    best = getattr(result, "best_signature_time", None) or poe or ctx.now  # B-B: the validation time (§5.3)
    if is_doc_ts and status is not None:
        stamps.append(timestamp_info("document", status))
        best = status.timestamp
    elif status is not None and getattr(status, "timestamp_validity", None) is not None:
        stamps.append(timestamp_info("signature", status.timestamp_validity))
    if not is_doc_ts:
        stamps += embedded_timestamps(sig.signer_info, stamps)
    stamps += archive
    if poe is not None:
        stamps.append(TimestampInfo(kind="deposit", time=poe, valid=True, detail="proof of existence given by caller"))
        best = min(best, poe) if best else poe
    proven = best if level is not Level.B_B or poe is not None else None  # B-B: "now" proves nothing
    indication, sub = refine(indication, sub, status, proven, getattr(result, "signature_not_before_time", None), seen)
    if level is not None and status is not None:
        embedded = embedded_validation_data(sig) if level in {Level.B_B, Level.B_LT, Level.B_LTA} else None
        knowledge = ctx.spec_for(sig.signer_info["signature"].native, None, embedded).local_knowledge
        indication, sub, expiry_error = await recheck_expired_signer(
            indication,
            sub,
            status.signing_cert,
            proven,
            ctx.now,
            ctx.policy,
            knowledge,
            [c.chosen for c in sig.signed_data["certificates"] or []],
            ctx.spec.revinfo_gathering_policy.fetcher_backend,
        )
        extra_errors = (expiry_error,) if expiry_error else ()
        if level is Level.B_LT and indication is Indication.TOTAL_PASSED and status.signing_cert is not None:
            gap = await validation_data_gap(
                status.signing_cert,
                proven or ctx.now,
                ctx.policy,
                knowledge,
                [c.chosen for c in sig.signed_data["certificates"] or []],
            )
            if gap:
                level = Level.B_T
                warnings.append(f"{Warning_.SIGNATURE_VALIDATION_DATA_INCOMPLETE.value}: {gap}: level B-T, not B-LT")
    else:
        extra_errors = ()
    ades_sub = sub
    if range_problems:  # not the signature's own /Contents left out, or another signature's gap too
        warnings.append(Warning_.PDF_BYTE_RANGE_INVALID.value)
        if indication is not Indication.TOTAL_FAILED:
            indication, sub = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
    # pyhanko's AdES functions do not look at coverage or DocMDP: gate on the PDF-level bottom line too.
    if indication is Indication.TOTAL_PASSED:
        if status is not None and not status.intact:
            indication, sub = Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE
        elif status is not None and not status.valid:
            indication, sub = Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE
        elif (
            any(not m.allowed for m in mods)
            or Warning_.PDF_SIGNATURE_WRAPPING in warnings
            or (not is_doc_ts and not allowed and sig.coverage != SignatureCoverageLevel.ENTIRE_FILE)
        ):
            indication, sub = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
        elif getattr(status, "seed_value_ok", True) is False:  # the field's seed value constraints
            indication, sub = Indication.INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE
        elif getattr(status, "bottom_line", True) is False:  # pyhanko's own summary must agree, always
            indication, sub = Indication.INDETERMINATE, SubIndication.GENERIC
    elif indication is Indication.INDETERMINATE and any(not m.allowed for m in mods):
        # whoever signed, the document a reader sees is not the one signed: that is decided already
        indication, sub = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
    errors = (result.failure_msg,) if result.failure_msg and indication is not Indication.TOTAL_PASSED else ()
    errors = (*errors, *extra_errors, *(f"/ByteRange: {p}" for p in range_problems))
    report = replace(
        base,
        indication=indication,
        subindication=sub,
        level=level,
        signer=None if timestamp_only else signer_of(sig.signer_cert),
        signing_time=claimed_time(status) or sig.self_reported_timestamp,
        best_signature_time=best,
        timestamps=tuple(stamps),
        modifications=mods,
        warnings=(*(str(w) for w in warnings), *offline_warning(ctx.policy.offline, sub)),
        errors=errors,
    )
    return with_french_rule(report, ades_sub, status.intact if status is not None else None)


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
