"""CAdES: detached (.p7s) and enveloping (.p7m) CMS signatures, validated per EN 319 102-1.

pyhanko's AdES processes do the work (they wrap ``generic_cms.cms_basic_validation``, the core of
``async_validate_detached_cms`` / ``async_validate_cms_signature``, and add the signature-timestamp
handling those lack). Every SignerInfo of a CMS is validated and reported on its own (parallel
signatures); pyhanko validates one SignerInfo per SignedData, so each is presented to it alone
(:func:`signer_view`). Hand-written here: pairing a detached signature with the bid file it signs by
the signed message digest, reading the embedded validation data (SignedData.crls and revocation-values,
:mod:`cades_ltv`) so B-LT validates offline, telling damaged CMS from non-CMS (:mod:`cades_format`),
extracting a .p7m's content for intake, and the archive-time-stamp-v3 imprint input
(:mod:`cades_archive`; pyhanko validates the token itself). B-LTA is reported only when every archive
timestamp of a B-LT signer verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from asn1crypto import cms, core, x509
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.general import extract_certificate_info, find_unique_cms_attribute
from pyhanko.sign.validation import ades, generic_cms
from pyhanko.sign.validation.policy_decl import LocalKnowledge, SignatureValidationSpec

from bidproc.errors import Warning_
from bidproc.signature.cades.archive import (
    ARCHIVE_TS_V3,
    ArchiveTimestampError,
    archive_timestamps,
    expected_imprint,
    hash_index_of,
)
from bidproc.signature.cades.format import BrokenSignedData
from bidproc.signature.cades.format import load_signed_data as load_signed_data  # the entry point callers use
from bidproc.signature.cades.ltv import REVOCATION_VALUES as REVOCATION_VALUES  # re-exported (test helpers)
from bidproc.signature.cades.ltv import RevocationValues as RevocationValues
from bidproc.signature.cades.ltv import has_revocation_data, lt_knowledge
from bidproc.signature.cades.pairing import Pairing, digest, pair_detached
from bidproc.signature.context import Context
from bidproc.signature.decision import Evidence, decide
from bidproc.signature.french import with_french_rule
from bidproc.signature.outcome import (
    MalformedSignature,
    check_digest_algorithm,
    claimed_time,
    embedded_timestamps,
    indication_for_exception,
    offline_warning,
    path_errors,
    signer_of,
    timestamp_info,
)
from bidproc.signature.report import (
    Indication,
    Level,
    SignatureFormat,
    SignatureReport,
    Signer,
    SubIndication,
    TimestampInfo,
)

# CAdES-LT material (EN 319 122-2 §5.5): ETSI unsigned attributes asn1crypto does not name.
CERT_VALUES = "1.2.840.113549.1.9.16.2.23"
ARCHIVE_TS_V2 = "1.2.840.113549.1.9.16.2.48"  # id-aa-ets-archiveTimestampV2 (TS 101 733)
ARCHIVE_TS = frozenset({ARCHIVE_TS_V3, ARCHIVE_TS_V2})


def is_detached(sd: cms.SignedData) -> bool:
    return sd["encap_content_info"]["content"].native is None


def enveloped_content(sd: cms.SignedData) -> bytes | None:
    """The signed content of an enveloping signature (.p7m), for the pipeline to send through intake."""
    if isinstance(sd, BrokenSignedData):
        return None
    content = sd["encap_content_info"]["content"]
    return (
        None
        if content.native is None
        else bytes(content.native if isinstance(content.native, bytes) else content.contents)
    )


def level_of(sd: cms.SignedData, si: cms.SignerInfo) -> Level:
    """The level the signature claims; B-LT is confirmed by validation (expiry.validation_data_gap)."""
    has_ts = any(True for _ in generic_cms.extract_tst_data_iter(si, signed=False))
    if not has_ts:
        return Level.B_B
    # B-LTA is decided after the archive timestamps are verified (_validate_signer): never from presence
    return Level.B_LT if has_revocation_data(sd, si) else Level.B_T


def has_archive_timestamp(si: cms.SignerInfo, versions: frozenset[str] = ARCHIVE_TS) -> bool:
    attrs = si["unsigned_attrs"]
    return not isinstance(attrs, core.Void) and any(a["type"].dotted in versions for a in attrs)


async def _archive_stamps(
    sd: cms.SignedData, si: cms.SignerInfo, content: bytes | None, spec: SignatureValidationSpec, ctx: Context
) -> tuple[list[TimestampInfo], list[str]]:
    """Each archive-time-stamp-v3 of the signer, verified (see :mod:`cades_archive`): (reports, problems)."""
    stamps: list[TimestampInfo] = []
    problems: list[str] = []
    for n, tst in enumerate(archive_timestamps(si)):
        try:
            tst_sd = tst["content"]
            when = tst_sd["encap_content_info"]["content"].parsed["gen_time"].native
        except (KeyError, ValueError, TypeError, AttributeError):
            problems.append(f"archive timestamp {n}: not a timestamp token")
            continue
        try:
            if content is None:
                raise ArchiveTimestampError("the signed data is not available")
            expected = expected_imprint(sd, si, content, hash_index_of(tst))
            with path_errors():
                result = await ades.ades_timestamp_validation(tst_sd, spec, expected, timing_info=ctx.timing())
        except Exception as exc:  # an archive timestamp decides the level only, never the signature's verdict
            problems.append(f"archive timestamp {n}: {exc}")
            stamps.append(TimestampInfo(kind="archive", time=when, valid=False, detail=str(exc)))
            continue
        status = result.api_status
        if status is None:
            problems.append(f"archive timestamp {n}: {result.failure_msg or 'not validated'}")
            stamps.append(TimestampInfo(kind="archive", time=when, valid=False, detail=result.failure_msg))
            continue
        info = timestamp_info("archive", status)
        if not (info.valid and isinstance(result.ades_subindic, AdESPassed)):
            mismatch = "its message imprint is not the hash of the archive-time-stamp-v3 input"
            reason = mismatch if not status.intact else None
            reason = reason or result.failure_msg or str(getattr(result.ades_subindic, "name", "not valid"))
            problems.append(f"archive timestamp {n}: {reason}")
            info = replace(info, valid=False, detail=reason)
        stamps.append(info)
    return stamps, problems


def signer_view(sd: cms.SignedData, index: int) -> cms.SignedData:
    """The SignedData as its ``index``-th signer alone would have made it (same content, certificates, CRLs).

    Hand-written because pyhanko 0.38 has no per-SignerInfo entry point: ``generic_cms`` and the
    ``ades`` processes all take a whole SignedData and call ``extract_signer_info``, which refuses
    anything but exactly one SignerInfo. Dropping the other SignerInfos changes nothing a signer
    signed: a SignerInfo's signature covers its own signed attributes (hence the content digest) only,
    and the signature timestamp covers its own signature value only (RFC 5652 §5.4, RFC 3161 App. A).
    """
    if len(sd["signer_infos"]) == 1:
        return sd
    view = cms.SignedData.load(sd.untag().dump())
    view["signer_infos"] = cms.SignerInfos([cms.SignerInfo.load(sd["signer_infos"][index].dump())])
    return view


def format_problem(sd: cms.SignedData) -> str | None:
    """Why the CMS is not a signature in a format we validate (:class:`MalformedSignature`), or None."""
    if isinstance(sd, BrokenSignedData):
        return sd.problem
    if len(sd["signer_infos"]) == 0:
        return "CMS SignedData without any SignerInfo"
    if enveloped_content(sd) == b"":
        # eContent present but empty: neither detached (RFC 5652 §5.2: eContent absent) nor enveloping
        # anything; a detached signature's data is never an empty attached content
        return "CMS eContent is present but empty: an enveloping signature over nothing, not a detached one"
    return None


async def validate_cms(
    name: str, sd: cms.SignedData, ctx: Context, files: Mapping[str, bytes]
) -> list[SignatureReport]:
    """One CMS signature file: one report per SignerInfo (parallel signatures, e.g. co-signed bids).

    Detached signatures are paired once with the bid file any signer's message digest matches; each
    signer is then validated on its own against that data, so a signer over other data gets its own
    HASH_FAILURE. An exception while validating one signer is that signer's verdict only.
    """
    problem = format_problem(sd)
    if problem is not None:
        ind, sub, msg = indication_for_exception(MalformedSignature(problem))
        report = SignatureReport(file=name, format=SignatureFormat.CADES, indication=ind, signature_id="0")
        return [replace(report, subindication=sub, errors=(msg,))]
    count = len(sd["signer_infos"])
    pairing = pair_detached(name, sd, files) if is_detached(sd) else None
    own_sha256 = hashlib.sha256(files[name]).hexdigest() if name in files else None
    reports = []
    if count > MAX_SIGNERS:  # hostile: each signer costs a full validation (and a copy of the SignedData)
        reports.append(
            SignatureReport(
                file=name,
                format=SignatureFormat.CADES,
                indication=Indication.TOTAL_FAILED,
                subindication=SubIndication.FORMAT_FAILURE,
                signature_id=f"{MAX_SIGNERS}..{count - 1}",
                errors=(f"{count} signers: only the first {MAX_SIGNERS} are validated",),
            )
        )
        count = MAX_SIGNERS
    for index in range(count):
        view = None
        try:
            view = signer_view(sd, index)
            reports.append(await _validate_signer(name, view, str(index), ctx, pairing, own_sha256))
        except Exception as exc:  # this signer's verdict; the others are still validated
            ind, sub, msg = indication_for_exception(exc)
            reports.append(
                SignatureReport(
                    file=name,
                    format=SignatureFormat.CADES,
                    indication=ind,
                    subindication=sub,
                    signature_id=str(index),
                    signer=_cert_signer(view) if view is not None else None,
                    errors=(msg,),
                )
            )
    return reports


@dataclass(frozen=True)
class _Gathered:
    """What the CMS and the bid files say about one signer, before validation."""

    si: cms.SignerInfo
    level: Level
    signed_name: str
    content: bytes | None  # the signed data (enveloped, or the paired file)
    raw_digest: bytes | None  # detached: the digest of the paired file
    poe: datetime | None  # the deposit's proof of existence
    own_data: LocalKnowledge | None  # the signature's own validation data (cades_ltv)
    spec: SignatureValidationSpec
    warnings: tuple[str, ...]


def _gather(
    sd: cms.SignedData, ctx: Context, pairing: Pairing | None, signature_file_sha256: str | None
) -> _Gathered | str:
    """The evidence for :func:`_validate_signer`, or why the signed data is missing."""
    warnings: list[str] = []
    si = sd["signer_infos"][0]
    check_digest_algorithm(si["digest_algorithm"]["algorithm"].native)
    if has_archive_timestamp(si, frozenset({ARCHIVE_TS_V2})):
        warnings.append(
            f"{Warning_.CADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED.value}: archive-time-stamp-v2 (TS 101 733) is not "
            "verified; level reported without B-LTA"
        )
    raw_digest = None
    signed_name, content = "", enveloped_content(sd)
    if pairing is not None:
        if pairing.data is None:
            return "no file of the bid has the signed message digest"
        signed_name, content = pairing.name or "", pairing.data
        if not pairing.by_digest:  # paired by name only: validation will say how the file differs
            warnings.append(f"{Warning_.SIGNATURE_DETACHED_PAIRED_BY_NAME.value}: no file has the signed digest")
        raw_digest = digest(si["digest_algorithm"]["algorithm"].native, pairing.data)
    # The deposit proves the signature existed when the file *carrying* it was received: the .p7m/.p7s
    # itself (an enveloping signature's inner document is not in the receipt), or the signed file.
    deposits = [
        ctx.deposit_poe(sha256)
        for sha256 in (signature_file_sha256, hashlib.sha256(content).hexdigest() if content is not None else None)
        if sha256 is not None
    ]
    poe = min((t for t in deposits if t is not None), default=None)
    own_data = lt_knowledge(sd, si)
    return _Gathered(
        si=si,
        level=level_of(sd, si),
        signed_name=signed_name,
        content=content,
        raw_digest=raw_digest,
        poe=poe,
        own_data=own_data,
        spec=ctx.spec_for(si["signature"].native, poe, own_data),
        warnings=tuple(warnings),
    )


async def _validate_signer(
    name: str,
    sd: cms.SignedData,
    signature_id: str,
    ctx: Context,
    pairing: Pairing | None,
    signature_file_sha256: str | None = None,
) -> SignatureReport:
    """The single signer of ``sd`` (see :func:`signer_view`), validated per EN 319 102-1: gather the
    evidence, validate with pyhanko, decide (:mod:`bidproc.signature.decision`), assemble the report."""
    base = SignatureReport(
        file=name, format=SignatureFormat.CADES, indication=Indication.INDETERMINATE, signature_id=signature_id
    )
    got = _gather(sd, ctx, pairing, signature_file_sha256)
    if isinstance(got, str):
        si = sd["signer_infos"][0]
        return replace(
            base,
            subindication=SubIndication.SIGNED_DATA_NOT_FOUND,
            signer=_cert_signer(sd),
            level=level_of(sd, si),
            errors=(got,),
        )
    fn = ades.ades_basic_validation if got.level is Level.B_B else ades.ades_with_time_validation
    with path_errors() as seen:
        result = await fn(sd, got.spec, timing_info=ctx.timing(), raw_digest=got.raw_digest)
    status = result.api_status
    # pyhanko's with-time process ignores a provided POE (its LTA process reads them): the earlier one, as PAdES
    best = min((t for t in (getattr(result, "best_signature_time", None), got.poe) if t is not None), default=ctx.now)
    evidence = Evidence(
        result=result,
        level=got.level,
        proven=best if got.level is not Level.B_B or got.poe is not None else None,  # B-B: "now" proves nothing
        signer_cert=status.signing_cert if status is not None else _signer_cert(sd),
        knowledge=got.spec.local_knowledge,
        own_data=got.own_data,
        signed_certs=[c.chosen for c in sd["certificates"] or []],
        seen=seen,
        signer_info=got.si,
    )
    decision = await decide(evidence, ctx)
    stamps, level, archive_warnings = await _timestamps(sd, got, status, decision.level, ctx)
    indication, sub = decision.indication, decision.subindication
    errors = (result.failure_msg,) if result.failure_msg and indication is not Indication.TOTAL_PASSED else ()
    report = replace(
        base,
        indication=indication,
        subindication=sub,
        level=level,
        signer=signer_of(status.signing_cert) if status is not None else _cert_signer(sd),
        signing_time=claimed_time(status) or _signing_time_attr(got.si),
        best_signature_time=best,
        timestamps=tuple(stamps),
        signed_data=(got.signed_name or name,),
        warnings=(*got.warnings, *decision.warnings, *archive_warnings, *offline_warning(ctx.policy.offline, sub)),
        errors=(*errors, *decision.errors),
    )
    # The French rule's integrity point rests on pyhanko's own message-digest check.
    return with_french_rule(report, sub, getattr(status, "intact", None) if status is not None else None)


async def _timestamps(
    sd: cms.SignedData, got: _Gathered, status: Any, level: Level | None, ctx: Context
) -> tuple[list[TimestampInfo], Level | None, tuple[str, ...]]:
    """The signer's timestamps to report, and B-LTA when B-LT material has every archive timestamp verified."""
    stamps: list[TimestampInfo] = []
    if status is not None and getattr(status, "timestamp_validity", None) is not None:
        stamps.append(timestamp_info("signature", status.timestamp_validity))
    stamps += embedded_timestamps(got.si, stamps)
    archived, problems = await _archive_stamps(sd, got.si, got.content, got.spec, ctx)
    stamps += archived
    if got.poe is not None:
        stamps.append(
            TimestampInfo(kind="deposit", time=got.poe, valid=True, detail="proof of existence given by caller")
        )
    if problems:
        reasons = "; ".join(problems)
        code = Warning_.CADES_ARCHIVE_TIMESTAMP_NOT_VALIDATED.value
        return stamps, level, (f"{code}: {reasons}; level reported without B-LTA",)
    if archived and level is Level.B_LT and not has_archive_timestamp(got.si, frozenset({ARCHIVE_TS_V2})):
        level = Level.B_LTA  # B-LT material, and every archive timestamp on it verified
    return stamps, level, ()


MAX_SIGNERS = 50  # per CMS: far more than any co-signed bid, bounded work on a hostile file


def _signing_time_attr(si: cms.SignerInfo) -> datetime | None:
    """The signingTime the signer claims, read from the CMS when validation stopped before reporting it."""
    try:
        value = find_unique_cms_attribute(si["signed_attrs"], "signing_time").native
    except (KeyError, ValueError, TypeError):  # absent, several, or not a time
        return None
    return value if isinstance(value, datetime) else None


def _signer_cert(sd: cms.SignedData) -> x509.Certificate | None:
    """The signer's certificate as the CMS names it (not validated)."""
    try:
        cert: x509.Certificate = extract_certificate_info(sd).signer_cert
        return cert
    except Exception:  # no signer certificate: validation reports NO_SIGNING_CERTIFICATE_FOUND
        return None


def _cert_signer(sd: cms.SignedData) -> Signer | None:
    """The signer named by the CMS itself, for reports where validation did not get that far."""
    return signer_of(_signer_cert(sd))
