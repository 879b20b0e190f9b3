"""PAdES evidence: what one signature of a PDF shows before and after pyhanko validates it.

The first of the three steps of :mod:`.validator` (gather evidence, decide, assemble the report): the
changes after the signature and the attacks they name (:mod:`.modifications`, :mod:`.tail`), its byte
ranges, the level its material claims (:mod:`.levels`), its archive timestamps, then pyhanko's EN 319
102-1 process for that level and the times it proves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, SuspiciousModification
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import ades
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, read_certification_data
from pyhanko.sign.validation.policy_decl import LocalKnowledge, PdfSignatureValidationSpec
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel

from bidproc.errors import Warning_
from bidproc.signature.context import Context
from bidproc.signature.outcome import (
    check_digest_algorithm,
    embedded_timestamps,
    indication_of,
    path_errors,
    timestamp_info,
)
from bidproc.signature.pades import byte_ranges
from bidproc.signature.pades.levels import archive_stamps, doc_timestamp, embedded_validation_data, pdf_level
from bidproc.signature.pades.modifications import modifications_after, name_attacks
from bidproc.signature.pades.tail import changes_after, signature_baseline
from bidproc.signature.report import Indication, Level, Modification, TimestampInfo


@dataclass
class PdfFacts:
    """What the PDF itself says about one signature (no certificate validation yet)."""

    is_doc_ts: bool
    mods: tuple[Modification, ...]
    allowed: bool  # pyhanko's DocMDP and difference analysis accept what follows the signature
    range_problems: list[str]
    level: Level | None  # None: a document timestamp
    archive: list[TimestampInfo]
    timestamp_only: bool  # a document timestamp protecting no signature
    poe: datetime | None  # the deposit's proof of existence, given by the caller
    warnings: list[str] = field(default_factory=list)
    embedded: LocalKnowledge | None = None  # the DSS / Adobe revocation attribute, read once


async def pdf_facts(
    data: bytes,
    reader: PdfFileReader,
    sig: EmbeddedPdfSignature,
    all_sigs: list[EmbeddedPdfSignature],
    ctx: Context,
    tail: tuple[Modification, ...],
) -> PdfFacts:
    is_doc_ts = sig.sig_object_type == "/DocTimeStamp"
    check_digest_algorithm(sig.md_algorithm)  # else pyhanko fails deep inside with an AttributeError
    sig.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)  # type: ignore[no-untyped-call]
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
    facts = PdfFacts(
        is_doc_ts=is_doc_ts,
        mods=mods,
        allowed=allowed,
        range_problems=range_problems,
        level=None,
        archive=[],
        timestamp_only=False,
        poe=ctx.deposit_poe(hashlib.sha256(data).hexdigest()),
        warnings=[str(w) for w in warnings],
    )
    await _level_and_archive(facts, sig, reader, all_sigs, ctx)
    return facts


async def _level_and_archive(
    facts: PdfFacts,
    sig: EmbeddedPdfSignature,
    reader: PdfFileReader,
    all_sigs: list[EmbeddedPdfSignature],
    ctx: Context,
) -> None:
    """The level the signature's material claims, held only if its document timestamps validate (B-LTA)."""
    if facts.is_doc_ts:
        facts.timestamp_only = not any(
            s.sig_object_type != "/DocTimeStamp" and s.signed_revision < sig.signed_revision for s in all_sigs
        )
        if facts.timestamp_only:  # reported on its own, and its TSA is no signer (French rule: no signer identity)
            facts.warnings.append(
                f"{Warning_.PDF_TIMESTAMP_ONLY.value}: a document timestamp protecting no signature: it proves "
                "this revision existed at its time; it is not a signature and names no signer"
            )
        return
    doc_ts_revs = [s.signed_revision for s in all_sigs if s.sig_object_type == "/DocTimeStamp"]
    facts.level = pdf_level(sig, reader, doc_ts_revs)
    facts.archive, archive_warnings = await archive_stamps(sig, all_sigs, ctx)
    facts.warnings += archive_warnings
    if facts.level is Level.B_LTA and not any(t.valid for t in facts.archive):
        # EN 319 142-1 B-LTA is the document timestamp *and* its validation: none held, so the
        # signature is what its other material makes it (validated as B-LT with the DSS)
        facts.level = Level.B_LT
        facts.warnings.append(
            f"{Warning_.PADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED.value}: no document timestamp validated: level B-LT"
        )
    if facts.level in {Level.B_B, Level.B_LT, Level.B_LTA}:
        facts.embedded = embedded_validation_data(sig)


async def _ades(sig: EmbeddedPdfSignature, level: Level, ctx: Context, facts: PdfFacts) -> Any:
    """Run the EN 319 102-1 process matching ``level``.

    ``ades_lta_validation`` reads the DSS and the document timestamps (past validation with POE) but
    answers NO_POE when no document timestamp follows: B-B uses basic, B-T and B-LT with-time (B-LT
    with the DSS content as local knowledge), B-LTA the LTA process.
    """
    # B-LT without a document timestamp: the DSS / Adobe revocation attribute is the validation data
    # (pyhanko reads it only inside ades_lta_validation; its readers are private but pinned with 0.38.*)
    extra = facts.embedded if level is Level.B_LT else None
    spec = ctx.spec_for(sig.signer_info["signature"].native, facts.poe, extra)
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


async def validated(sig: EmbeddedPdfSignature, facts: PdfFacts, ctx: Context) -> tuple[Any, list[BaseException]]:
    """pyhanko's answer for the signature (or document timestamp), and the path errors it swallowed."""
    level = facts.level
    with path_errors() as seen:
        if level is None:
            result, ts_seen = await doc_timestamp(sig, ctx)
            seen += ts_seen
            return result, seen
        result = await _ades(sig, level, ctx, facts)
        passed = indication_of(result.ades_subindic)[0] is Indication.TOTAL_PASSED
        if level is Level.B_LTA and not passed and not all(t.valid for t in facts.archive):
            # pyhanko's LTA process takes the document timestamps as one evidence record: one broken
            # timestamp drops every proof of existence, and a signature valid today ends NO_POE.
            # The B-LT process (the DSS, at the validation time) is then the one that can conclude.
            facts.embedded = facts.embedded or embedded_validation_data(sig)
            result = await _ades(sig, Level.B_LT, ctx, facts)
    return result, seen


def times(
    sig: EmbeddedPdfSignature, facts: PdfFacts, status: Any, result: Any, ctx: Context
) -> tuple[list[TimestampInfo], datetime, datetime | None]:
    """The timestamps to report, the best signature time and the proof of existence the decision uses."""
    poe = facts.poe
    stamps: list[TimestampInfo] = []
    best = getattr(result, "best_signature_time", None) or poe or ctx.now  # B-B: the validation time (§5.3)
    if facts.is_doc_ts and status is not None:
        stamps.append(timestamp_info("document", status))
        best = status.timestamp
    elif status is not None and getattr(status, "timestamp_validity", None) is not None:
        stamps.append(timestamp_info("signature", status.timestamp_validity))
    if not facts.is_doc_ts:
        stamps += embedded_timestamps(sig.signer_info, stamps)
    stamps += facts.archive
    if poe is not None:
        stamps.append(TimestampInfo(kind="deposit", time=poe, valid=True, detail="proof of existence given by caller"))
        best = min(best, poe) if best else poe
    proven = best if facts.level is not Level.B_B or poe is not None else None  # B-B: "now" proves nothing
    return stamps, best, proven
