"""XAdES validation (ETSI EN 319 132 signatures, EN 319 102-1 verdicts): enveloped, enveloping, detached.

Who does what:
- lxml (``xml_safety``) parses the untrusted file: no DTD, no entities, no network, bounded size/depth;
  duplicate Ids anywhere are refused (signature wrapping), so every same-document Reference resolves to
  exactly one element.
- signxml's ``XAdESVerifier`` checks the XML-DSig core (SignatureValue over SignedInfo, every Reference
  digest, detached ones through our ``uri_resolver``) and that xades:SigningCertificate(V2) names the key
  that signed. We hand it the signing certificate ourselves, so it never builds a chain from the OS store
  and never judges validity periods: both are EN 319 102-1 matters done below.
  ``xades_core`` drives it, canonicalising with ``xades_c14n`` (C14N 1.1 apart from 1.0, inherited
  ``xml:*`` attributes), and checks what was signed: this signature's own SignedProperties, the references
  of every signed ds:Manifest (``xades_manifest``; core validation does not), and no unsigned content in
  the signature's ds:Objects.
- pyhanko-certvalidator (``xades_time.validate_signer_certificate``, pyhanko's ``validate_cert_usage`` plus
  TRY_LATER) builds the chain to the policy's trust anchors only, fetches OCSP/CRLs unless offline, and
  yields the ETSI sub-indication.
- ``xades_timestamp`` validates SignatureTimeStamps (signxml does not).
- ``xades_ltv`` reads the embedded validation data (CertificateValues, RevocationValues,
  TimeStampValidationData) into the ValidationContext and decides whether it covers the chain (B-LT);
  ``xades_archive`` validates ArchiveTimeStamps (B-LTA).
Hand-written here: locating the XAdES parts of each signature, identifying the signing certificate
(EN 319 102-1 §5.2.3), the time logic of §5.5 (mirrors pyhanko's ``ades_with_time_validation``, which is
bound to CMS and cannot take an XML signature), and the verdict/French-rule assembly.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.generic_cms import CertvalidatorOperationResult
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from bidproc.errors import Code, Warning_
from bidproc.signature.expiry import expired_at, expired_verdict, status_at
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import (
    Indication,
    Level,
    RuleOutcome,
    SignatureReport,
    SubIndication,
    TimestampInfo,
)
from bidproc.signature.xades import checks
from bidproc.signature.xades.archive import find_archive_timestamps, validate_archive_timestamp
from bidproc.signature.xades.core import verify_core
from bidproc.signature.xades.ltv import USP, ValidationData, coverage_context, read_validation_data
from bidproc.signature.xades.manifest import Covered
from bidproc.signature.xades.poe_time import Chain, decide_unknown_status, judge_chain, validate_signer_certificate
from bidproc.signature.xades.timestamps import NS, find_signature_timestamps, validate_signature_timestamp
from bidproc.signature.xades.xml_safety import UnsafeXML, duplicate_ids, parse_untrusted

T = TypeVar("T")
logger = logging.getLogger(__name__)
DS_SIGNATURE = f"{{{NS['ds']}}}Signature"
_DECIDED_FROM_EMBEDDED_DATA = {
    "REVOKED_NO_POE",
    "REVOKED_CA_NO_POE",
    "OUT_OF_BOUNDS_NO_POE",
    "OUT_OF_BOUNDS_NOT_REVOKED",
}


def validate_xades(
    name: str, data: bytes, policy: ValidationPolicy, detached: Mapping[str, bytes]
) -> list[SignatureReport]:
    """One report per ds:Signature of ``data`` (an XML bid file); never raises on hostile input."""
    try:
        tree = parse_untrusted(data, max_bytes=policy.max_xml_bytes, max_depth=policy.max_xml_depth)
    except UnsafeXML as exc:
        return [checks.format_failure(name, None, f"{Code.XML_UNSAFE.value}: {exc}")]
    root = tree.getroot()
    signatures = [root] if root.tag == DS_SIGNATURE else []
    signatures += [s for s in root.iterdescendants(DS_SIGNATURE) if _outermost(s)]
    if not signatures:
        return []
    duplicates = duplicate_ids(root)
    if duplicates:
        reason = f"duplicate Id values {duplicates[:5]}: references are ambiguous (signature wrapping)"
        return [checks.format_failure(name, s.get("Id"), reason) for s in signatures]
    return _run(_validate_all(name, data, tree, signatures, policy, detached))


def _outermost(signature: etree._Element) -> bool:
    # Counter-signatures live inside another signature's unsigned properties: reported with their parent.
    return not any(a.tag == DS_SIGNATURE for a in signature.iterancestors())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion even when the caller is itself inside an event loop (the pipeline)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _validate_all(
    name: str,
    data: bytes,
    tree: etree._ElementTree,
    signatures: list[etree._Element],
    policy: ValidationPolicy,
    detached: Mapping[str, bytes],
) -> list[SignatureReport]:
    # One fetcher backend (one aiohttp session) for the whole file, closed here: no leaked connections.
    backend = None if policy.offline else AIOHttpFetcherBackend(per_request_timeout=policy.fetch_timeout_seconds)
    try:
        reports = []
        if len(signatures) > MAX_SIGNATURES:  # hostile: each signature costs a full validation
            reports.append(
                checks.format_failure(
                    name,
                    f"signatures {MAX_SIGNATURES + 1}..{len(signatures)}",
                    f"{len(signatures)} signatures: only the first {MAX_SIGNATURES} are validated",
                )
            )
            signatures = signatures[:MAX_SIGNATURES]
        for index, signature in enumerate(signatures):
            context = _Context(name, data, tree, policy, detached, backend)
            try:
                reports.append(await _validate_one(context, signature, index))
            except Exception as exc:  # a bug or an unforeseen input must cost one verdict, not the whole bid
                logger.exception("XAdES validation of %s signature %d failed", name, index)
                reports.append(checks.internal_error(name, signature.get("Id"), exc))
        return reports
    finally:
        if backend is not None:
            await backend.close()  # type: ignore[no-untyped-call, unused-ignore]


@dataclass(frozen=True)
class _Context:
    name: str
    data: bytes
    tree: etree._ElementTree
    policy: ValidationPolicy
    detached: Mapping[str, bytes]
    backend: AIOHttpFetcherBackend | None

    def validation_context(self, extra_certs: list[x509.Certificate], embedded: ValidationData) -> ValidationContext:
        """``embedded``: the signature's own validation data (B-LT), used online and offline alike."""
        policy = self.policy
        others = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in extra_certs]
        others += [asn1_x509.Certificate.load(der) for der in policy.extra_certificates]
        others += embedded.certificates
        crls: list[bytes | asn1_crl.CertificateList] = [*policy.extra_crls, *embedded.crls]
        ocsps: list[bytes | asn1_ocsp.OCSPResponse] = [*policy.extra_ocsps, *embedded.ocsps]
        return ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(der) for der in policy.trust_anchors],  # never the OS store
            other_certs=others,
            # No fixed "now": certvalidator reads the clock itself, because revocation data fetched during the
            # validation is dated after any instant read before it and would be refused as "too new".
            moment=policy.at,
            # Data issued after the validation time shows the status then (a revocation lists its date; holds
            # would defeat this). At "now" too: an OCSP answer dated >1 s after this context's clock reading was
            # dropped as "too new", and an older CRL predating the revocation passed a revoked signer.
            retroactive_revinfo=True,
            allow_fetching=not policy.offline,
            # Revocation is always required (online: fetched; offline: embedded or given by the caller), as for
            # PAdES and CAdES: a certificate whose status nobody checked never passes (INDETERMINATE/TRY_LATER).
            revocation_mode="hard-fail",
            crls=crls,
            ocsps=ocsps,
            fetcher_backend=self.backend,
        )


MAX_SIGNATURES = 50  # per XML file


def unsigned_content(tree: etree._ElementTree, signature: etree._Element, covered: Sequence[Covered]) -> list[str]:
    """Top-level content of the XML file that no verified reference of ``signature`` covers (empty: all covered).

    ``covered``: what the signature's verified references (SignedInfo's and its manifests') designate. The
    signature itself is not content here (its own ds:Objects are judged by ``xades_manifest``), nor are
    other signatures of a detached-signature container.
    """
    root = tree.getroot()
    if root is signature:
        return []
    out = []
    for child in root:
        if not isinstance(child.tag, str) or child is signature or child.tag == signature.tag:
            continue
        if any(c.covers(child) for c in covered):
            continue
        out.append(etree.QName(child).localname)
    return out


async def _validate_one(ctx: _Context, signature: etree._Element, index: int) -> SignatureReport:
    sig_id = signature.get("Id") or f"signature-{index}"
    parts = checks.locate_parts(signature)
    if isinstance(parts, str):
        return checks.format_failure(ctx.name, sig_id, parts)
    cert, chain_certs = checks.identify_signing_certificate(parts, ctx.policy.extra_certificates)
    signer = checks.signer_of(cert) if cert is not None else None
    if cert is None:
        return checks.verdict(
            ctx.name,
            sig_id,
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            errors=("no KeyInfo certificate matches xades:SigningCertificate(V2)",),
            french=checks.french(RuleOutcome.PASSED, RuleOutcome.NOT_CHECKED, RuleOutcome.NOT_CHECKED, None),
        )
    core = verify_core(ctx.tree, ctx.data, parts, cert, ctx.detached)
    if core.failure is not None:
        indication, sub, reason = core.failure
        integrity = RuleOutcome.FAILED if sub in checks.INTEGRITY_FAILURES else RuleOutcome.NOT_CHECKED
        fmt = RuleOutcome.FAILED if sub is SubIndication.FORMAT_FAILURE else RuleOutcome.PASSED
        return checks.verdict(
            ctx.name,
            sig_id,
            indication,
            sub,
            signer=signer,
            signed_data=core.signed_data,
            errors=(reason,),
            warnings=core.warnings,
            french=checks.french(fmt, integrity, RuleOutcome.NOT_CHECKED, signer),
        )
    signing_time = core.signing_time
    embedded = read_validation_data(parts.qualifying_properties)

    # Signature timestamps (XAdES-T): each must hold; valid ones are proofs of existence.
    timestamps: list[TimestampInfo] = []
    problems: list[tuple[Indication, SubIndication | None, str]] = []
    signature_value = signature.find("ds:SignatureValue", NS)
    for element in find_signature_timestamps(parts.qualifying_properties):
        assert signature_value is not None  # signxml verified it exists
        outcome = await validate_signature_timestamp(element, signature_value, ctx.validation_context([], embedded))
        if outcome.time is not None:
            timestamps.append(TimestampInfo("signature", outcome.time, outcome.tsa, outcome.passed, outcome.detail,
                                            tsa_certificate=outcome.tsa_certificate))
        if not outcome.passed:
            problems.append((outcome.indication, outcome.subindication, f"signature timestamp: {outcome.detail}"))
    poe_times = [t.time for t in timestamps if t.valid]
    file_sha256 = hashlib.sha256(ctx.data).hexdigest()
    deposits = [when for digest, when in ctx.policy.proofs_of_existence if digest.lower() == file_sha256]
    poe_times += deposits
    best_time = min(poe_times) if poe_times else None

    # Signing certificate and chain (EN 319 102-1 §5.2.6), then the time logic of §5.5.
    vc = ctx.validation_context(chain_certs, embedded)
    cert_asn1 = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    if ctx.policy.trust_anchors:
        op = await validate_signer_certificate(cert_asn1, vc)
    else:  # nothing can chain: do not fetch issuers/CRLs from the network just to learn that
        no_chain = AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND
        op = CertvalidatorOperationResult(success_result=None, error_subindic=no_chain)
    chain = judge_chain(op, cert, best_time, signing_time)
    now = ctx.policy.at or datetime.now(UTC)
    if chain.outcome is None and best_time is not None and expired_at(cert_asn1, now) and ctx.policy.trust_anchors:
        # Expired since: certvalidator skipped revocation; the status at the proof of existence decides.
        found = await status_at(
            cert_asn1,
            best_time,
            ctx.policy,
            other_certs=[asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain_certs]
            + embedded.certificates,
            crls=list(embedded.crls),
            ocsps=list(embedded.ocsps),
            fetcher_backend=ctx.backend,
        )
        changed = expired_verdict(found, best_time)
        if changed is not None:
            french = RuleOutcome.FAILED if changed[1] is SubIndication.REVOKED else RuleOutcome.NOT_CHECKED
            chain = Chain(changed, french)
    chain = await decide_unknown_status(
        chain,
        cert_asn1,
        best_time,
        signing_time,
        now,
        ctx.policy,
        other_certs=[asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain_certs]
        + embedded.certificates,
        crls=[*ctx.policy.extra_crls, *embedded.crls],
        ocsps=[*ctx.policy.extra_ocsps, *embedded.ocsps],
        fetcher_backend=ctx.backend,
    )
    warnings = list(chain.warnings)
    uncovered = unsigned_content(ctx.tree, signature, core.covered)
    if uncovered:
        # Signature wrapping's favourite shape: a valid signature over one part, the reader shown another.
        warnings.append(f"{Warning_.XML_PARTIALLY_SIGNED.value}: not covered by this signature: {', '.join(uncovered)}")
    level = Level.B_T if any(t.valid for t in timestamps) else Level.B_B
    stamped = [t.time for t in timestamps if t.valid]
    if level is Level.B_T and (embedded.certificates or embedded.has_revocation_values):
        gap = await _embedded_data_gap(ctx, parts, cert_asn1, embedded, min(stamped))
        if gap is None:
            level = Level.B_LT
        else:
            warnings.append(f"{Warning_.XADES_VALIDATION_DATA_INCOMPLETE.value}: {gap}: level B-T, not B-LT")
    archives = find_archive_timestamps(parts.qualifying_properties)
    verified = 0
    for element in archives:
        outcome = await validate_archive_timestamp(
            ctx.tree, signature, parts.qualifying_properties, element, core.references, vc
        )
        if outcome.time is not None:
            timestamps.append(TimestampInfo("archive", outcome.time, outcome.tsa, outcome.passed, outcome.detail,
                                            tsa_certificate=outcome.tsa_certificate))
        if outcome.passed:
            verified += 1
        else:
            warnings.append(f"{Warning_.XADES_ARCHIVE_TIMESTAMP_INVALID.value}: {outcome.detail}: not B-LTA")
    for _legacy in parts.qualifying_properties.findall(f"{USP}/xades:ArchiveTimeStamp", NS):
        why = "xades:ArchiveTimeStamp (TS 101 903 v1.3.2 form) is not validated"
        warnings.append(f"{Warning_.XADES_ARCHIVE_TIMESTAMP_INVALID.value}: {why}: not B-LTA")
    if archives and verified == len(archives):
        if level is Level.B_LT:
            level = Level.B_LTA
        else:
            why = f"the archived signature is {level.value}, not B-LT: not B-LTA"
            warnings.append(f"{Warning_.XADES_ARCHIVE_TIMESTAMP_INVALID.value}: {why}")
    if ctx.policy.offline and level not in (Level.B_LT, Level.B_LTA):
        warnings.append(
            f"{Warning_.SIGNATURE_OFFLINE_NO_REVOCATION.value}: offline validation uses only revocation "
            "data embedded in the signature or given by the caller"
        )
    if signing_time is not None and best_time is not None and signing_time > best_time:
        warnings.append(
            f"{Warning_.SIGNING_TIME_AFTER_TIMESTAMP.value}: the claimed signing time is later than its proof "
            "of existence"
        )
    candidates = [*([chain.outcome] if chain.outcome else []), *problems]
    failed = [c for c in candidates if c[0] is Indication.TOTAL_FAILED]
    worst = failed[0] if failed else (candidates[0] if candidates else None)
    return checks.verdict(
        ctx.name,
        sig_id,
        worst[0] if worst else Indication.TOTAL_PASSED,
        worst[1] if worst else None,
        level=level,
        signer=signer,
        signing_time=signing_time,
        # EN 319 102-1 §5.6.2.1: the best signature time starts as the validation time and only proofs of
        # existence move it earlier; reported so, as PAdES and CAdES do. The time logic above used the proofs
        # alone (``best_time``): "now" proves nothing about when a B-B signature was made.
        best_signature_time=best_time if best_time is not None else now,
        timestamps=(
            *timestamps,
            # listed as PAdES lists it; after the level was decided (a deposit is no signature timestamp)
            *(
                [TimestampInfo("deposit", min(deposits), None, True, "proof of existence given by caller")]
                if deposits
                else []
            ),
        ),
        signed_data=core.signed_data,
        errors=tuple(c[2] for c in candidates),
        warnings=tuple(warnings),
        french=checks.french(RuleOutcome.PASSED, RuleOutcome.PASSED, chain.french, signer),
    )


async def _embedded_data_gap(
    ctx: _Context,
    parts: checks.Parts,
    cert: asn1_x509.Certificate,
    embedded: ValidationData,
    stamped: datetime,
) -> str | None:
    """Why the signature's own validation data does not validate its chain offline, or None when it does.

    Signer chain and signature timestamps' TSA chains are validated again with nothing but what the signature
    carries (KeyInfo certificates and the embedded values), no fetching, revocation data required below the
    trust anchor, as of the signature timestamp.
    """
    if embedded.problems:
        return "; ".join(embedded.problems)
    if not ctx.policy.trust_anchors:
        return "no trust anchor to validate the embedded chain against"
    carried = []
    for node in parts.signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        try:
            der = x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split())))
        except ValueError:  # binascii.Error is one; an unreadable KeyInfo certificate simply carries nothing
            continue
        carried.append(asn1_x509.Certificate.load(der.public_bytes(Encoding.DER)))
    context = coverage_context(ctx.policy.trust_anchors, carried, embedded, stamped)
    op = await validate_signer_certificate(cert, context)
    # Revoked or expired is a verdict the embedded data made possible (the chain checks report it): covered.
    if op.error_subindic is not None and op.error_subindic.name not in _DECIDED_FROM_EMBEDDED_DATA:
        return f"the embedded values do not validate the signing certificate ({op.error_subindic.name})"
    signature_value = parts.signature.find("ds:SignatureValue", NS)
    for element in find_signature_timestamps(parts.qualifying_properties):
        context = coverage_context(ctx.policy.trust_anchors, carried, embedded, stamped)
        outcome = await validate_signature_timestamp(element, signature_value, context)
        if not outcome.passed:
            return f"the embedded values do not validate the signature timestamp ({outcome.detail})"
    return None
