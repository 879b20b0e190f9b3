"""Which PAdES level a PDF signature's material supports (EN 319 142-1), its embedded validation data, and
the document timestamps that are its archive timestamps (EN 319 102-1 §5.6)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import ades, generic_cms
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import LocalKnowledge
from pyhanko.sign.validation.status import SignatureCoverageLevel

from bidproc.errors import Warning_
from bidproc.signature.context import Context
from bidproc.signature.outcome import indication_of, path_errors, refine, timestamp_info
from bidproc.signature.report import Indication, Level, TimestampInfo

ARCHIVE_DETAIL = "document timestamp "
log = logging.getLogger(__name__)


def _has_dss(reader: PdfFileReader) -> bool:
    try:
        DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return False
    return True


def _has_adobe_revinfo(sig: EmbeddedPdfSignature) -> bool:
    try:
        find_unique_cms_attribute(sig.signer_info["signed_attrs"], "adobe_revocation_info_archival")
    except (KeyError, ValueError):
        return False
    return True


def pdf_level(sig: EmbeddedPdfSignature, reader: PdfFileReader, doc_ts_revisions: list[int]) -> Level:
    """The level the signature's material supports: validation then tells whether it holds.

    B-T: a signature timestamp; B-LT: plus validation data (DSS or Adobe's revocation attribute);
    B-LTA: plus a document timestamp in a later revision.
    """
    has_ts = any(True for _ in generic_cms.extract_tst_data_iter(sig.signer_info, signed=False))
    if not has_ts:
        return Level.B_B
    if not (_has_dss(reader) or _has_adobe_revinfo(sig)):
        return Level.B_T
    return Level.B_LTA if any(r > sig.signed_revision for r in doc_ts_revisions) else Level.B_LT


def embedded_validation_data(sig: EmbeddedPdfSignature) -> LocalKnowledge:
    """The DSS and Adobe revocation attribute as local knowledge, for B-LT without a document timestamp.

    pyhanko reads them only inside ``ades_lta_validation``; its two readers are private, which is
    acceptable because pyproject pins pyhanko to 0.38.*.
    """
    dss, adobe = ades._dss_to_local_knowledge(sig.reader), ades._adobe_revinfo_archival_to_local_knowledge(sig)
    return LocalKnowledge(
        known_ocsps=dss.known_ocsps + adobe.known_ocsps,
        known_crls=dss.known_crls + adobe.known_crls,
        known_certs=dss.known_certs,
    )


# One validation per document timestamp and run: each signature it protects lists it (weak keys: the
# readers of a PDF go once its reports are made).
_DOC_TS_RESULTS: WeakKeyDictionary[EmbeddedPdfSignature, tuple[Context, Any, list[BaseException]]] = WeakKeyDictionary()


async def doc_timestamp(sig: EmbeddedPdfSignature, ctx: Context) -> tuple[Any, list[BaseException]]:
    """EN 319 102-1 §5.4 on a document timestamp, with the DSS as local knowledge.

    The validation data of a document timestamp's TSA is put in the DSS of a later revision (EN 319
    142-1 B-LTA), exactly as a B-LT signature's is: offline, that DSS is what validates it.
    """
    known = _DOC_TS_RESULTS.get(sig)
    if known is not None and known[0] is ctx:
        return known[1], known[2]
    spec = ctx.spec_for(sig.signer_info["signature"].native, None, embedded_validation_data(sig))
    with path_errors() as seen:
        result = await ades.ades_timestamp_validation(
            sig.signed_data, spec, lambda algo: sig.compute_digest(algo), timing_info=ctx.timing()
        )
        if isinstance(result.ades_subindic, AdESIndeterminate) and sig.signed_revision in await _chain(sig, ctx):
            # e.g. its TSA certificate has expired since: the renewal's proof of existence validated it
            # in the past, as pyhanko does for a signature timestamp (ades._process_signature_ts)
            result = dataclasses.replace(result, ades_subindic=AdESPassed.OK, failure_msg=None)
    _DOC_TS_RESULTS[sig] = (ctx, result, seen)
    return result, seen


_CHAINS: WeakKeyDictionary[PdfFileReader, tuple[Context, frozenset[int]]] = WeakKeyDictionary()


async def _chain(sig: EmbeddedPdfSignature, ctx: Context) -> frozenset[int]:
    """The revisions of the document timestamps that validate as one chain (EN 319 102-1 §5.6.2.5, the
    evidence record: each at the validation time or, failing that, in the past with the proof of
    existence of the later ones); empty when the chain does not hold as a whole.

    pyhanko's chain processing is what its LTA process runs; its two functions are private, acceptable
    with pyhanko pinned to 0.38.* (as for :func:`embedded_validation_data`).
    """
    known = _CHAINS.get(sig.reader)
    if known is not None and known[0] is ctx:
        return known[1]
    spec = ctx.spec_for(sig.signer_info["signature"].native, None, ades._dss_to_local_knowledge(sig.reader))
    held: frozenset[int] = frozenset()
    try:
        chain = ades._build_prima_facie_poe_index_from_pdf_timestamps(sig.reader, True, None)
        await ades._validate_prima_facie_poe(chain, validation_spec=spec, cur_timing_info=ctx.timing())
        held = frozenset(p.pdf_revision for p in chain)
    except Exception as exc:  # a timestamp of the chain fails: each one stands on its own validation only
        log.debug("document timestamp chain does not validate as a whole: %s", exc)
    _CHAINS[sig.reader] = (ctx, held)
    return held


async def archive_stamps(
    sig: EmbeddedPdfSignature, all_sigs: list[EmbeddedPdfSignature], ctx: Context
) -> tuple[list[TimestampInfo], list[str]]:
    """The document timestamps of later revisions as ``sig``'s archive timestamps (EN 319 102-1 §5.6),
    each valid exactly when its own timestamp validation passed; and a warning for each that did not."""
    stamps: list[TimestampInfo] = []
    warnings: list[str] = []
    for ts in all_sigs:
        if ts.sig_object_type != "/DocTimeStamp" or ts.signed_revision <= sig.signed_revision:
            continue
        detail = f"{ARCHIVE_DETAIL}{ts.field_name}"
        status: Any = None
        try:
            result, seen = await doc_timestamp(ts, ctx)
            status = result.api_status
            ind, sub = refine(*indication_of(result.ades_subindic), status, None, None, seen)
            why = f"{ind.value}/{sub.value if sub else '-'}"
            why += f" ({result.failure_msg})" if result.failure_msg else ""
            if ts.evaluate_signature_coverage() < SignatureCoverageLevel.ENTIRE_REVISION:
                ind, why = Indication.TOTAL_FAILED, "its byte range does not cover its whole revision"
        except Exception as exc:  # an unreadable token protects nothing: listed, not vouched for
            ind, why = Indication.TOTAL_FAILED, f"{type(exc).__name__}: {exc}"
        valid = ind is Indication.TOTAL_PASSED and status is not None
        if status is not None:
            stamps.append(replace(timestamp_info("archive", status, detail), valid=valid))
        else:
            stamps.append(
                TimestampInfo(kind="archive", time=ts.self_reported_timestamp or ctx.now, valid=False, detail=detail)
            )
        if not valid:
            warnings.append(f"{Warning_.PADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED.value}: {detail}: {why}")
    return stamps, warnings
