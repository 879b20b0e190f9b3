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
import hashlib
import logging
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from bidproc.errors import Code, Warning_
from bidproc.signature.context import validation_time
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SignatureReport, SubIndication, TimestampInfo
from bidproc.signature.xades import checks
from bidproc.signature.xades.context import XadesContext
from bidproc.signature.xades.core import Core, verify_core
from bidproc.signature.xades.decide import decide_chain, decide_level
from bidproc.signature.xades.ltv import ValidationData, read_validation_data
from bidproc.signature.xades.manifest import Covered, own_content
from bidproc.signature.xades.timestamps import NS, find_signature_timestamps, validate_signature_timestamp
from bidproc.signature.xades.xml_safety import UnsafeXML, duplicate_ids, parse_untrusted

T = TypeVar("T")
logger = logging.getLogger(__name__)
DS_SIGNATURE = f"{{{NS['ds']}}}Signature"


def validate_xades(
    name: str, data: bytes, policy: ValidationPolicy, detached: Mapping[str, bytes], now: datetime | None = None
) -> list[SignatureReport]:
    """One report per ds:Signature of ``data`` (an XML bid file); never raises on hostile input.

    ``now``: the validation time the caller read (:func:`bidproc.signature.context.validation_time`)."""
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
    return _run(_validate_all(name, data, tree, signatures, policy, detached, validation_time(policy, now)))


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
    now: datetime,
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
            context = XadesContext(name, data, tree, policy, detached, backend, now)
            try:
                reports.append(await _validate_one(context, signature, index))
            except Exception as exc:  # a bug or an unforeseen input must cost one verdict, not the whole bid
                logger.exception("XAdES validation of %s signature %d failed", name, index)
                reports.append(checks.internal_error(name, signature.get("Id"), exc))
        return reports
    finally:
        if backend is not None:
            await backend.close()  # type: ignore[no-untyped-call, unused-ignore]


MAX_SIGNATURES = 50  # per XML file


def unsigned_content(tree: etree._ElementTree, signature: etree._Element, covered: Sequence[Covered]) -> list[str]:
    """Content of the XML file that no verified reference of ``signature`` covers (empty: all covered).

    ``covered``: what the signature's verified references (SignedInfo's and its manifests') designate. The
    signature itself is not content here (its own ds:Objects are judged by ``xades_manifest``), nor are
    other signatures of a detached-signature container. Checked: processing instructions outside the root
    element (an ``xml-stylesheet`` re-renders the whole bid; signxml digests the root element even for
    URI="", so none is ever signed), the root's own text and attributes unless a reference covers the root,
    and each top-level element.
    """
    root = tree.getroot()
    out = [f"<?{node.target}?>" for node in _outside_root(root) if isinstance(node, etree._ProcessingInstruction)]
    if root is signature:
        return out
    if not any(c.element is root for c in covered):
        out += [f"{etree.QName(root).localname} {what}" for what in own_content(root)]
    for child in root:
        if not isinstance(child.tag, str) or child is signature or child.tag == signature.tag:
            continue
        if any(c.covers(child) for c in covered):
            continue
        out.append(etree.QName(child).localname)
    return out


def _outside_root(root: etree._Element) -> list[etree._Element]:
    return [*root.itersiblings(preceding=True), *root.itersiblings()]


async def _validate_one(ctx: XadesContext, signature: etree._Element, index: int) -> SignatureReport:
    """Gather the evidence (parts, signing certificate, XML-DSig core, timestamps), decide
    (:mod:`.decide`: chain and time, then level), assemble the report."""
    sig_id = signature.get("Id") or f"signature-{index}"
    found = _identify(ctx, signature, sig_id)
    if isinstance(found, SignatureReport):
        return found
    parts, cert, chain_certs, core = found
    embedded = read_validation_data(parts.qualifying_properties)
    timestamps, problems = await _signature_timestamps(ctx, signature, parts, embedded)
    file_sha256 = hashlib.sha256(ctx.data).hexdigest()
    deposits = [when for digest, when in ctx.policy.proofs_of_existence if digest.lower() == file_sha256]
    poe_times = [t.time for t in timestamps if t.valid] + deposits
    best_time = min(poe_times) if poe_times else None
    chain, vc, cert_asn1 = await decide_chain(ctx, cert, chain_certs, embedded, best_time, core.signing_time)
    warnings = list(chain.warnings)
    uncovered = unsigned_content(ctx.tree, signature, core.covered)
    if uncovered:
        # Signature wrapping's favourite shape: a valid signature over one part, the reader shown another.
        warnings.append(f"{Warning_.XML_PARTIALLY_SIGNED.value}: not covered by this signature: {', '.join(uncovered)}")
    level, archived, level_warnings = await decide_level(
        ctx, signature, parts, core, cert_asn1, embedded, timestamps, vc
    )
    warnings += level_warnings
    if ctx.policy.offline and level not in (Level.B_LT, Level.B_LTA):
        warnings.append(
            f"{Warning_.SIGNATURE_OFFLINE_NO_REVOCATION.value}: offline validation uses only revocation "
            "data embedded in the signature or given by the caller"
        )
    if core.signing_time is not None and best_time is not None and core.signing_time > best_time:
        warnings.append(
            f"{Warning_.SIGNING_TIME_AFTER_TIMESTAMP.value}: the claimed signing time is later than its proof "
            "of existence"
        )
    # listed as PAdES lists it; after the level was decided (a deposit is no signature timestamp)
    deposit = (
        (TimestampInfo("deposit", min(deposits), None, True, "proof of existence given by caller"),) if deposits else ()
    )
    candidates = [*([chain.outcome] if chain.outcome else []), *problems]
    failed = [c for c in candidates if c[0] is Indication.TOTAL_FAILED]
    worst = failed[0] if failed else (candidates[0] if candidates else None)
    signer = checks.signer_of(cert)
    return checks.verdict(
        ctx.name,
        sig_id,
        worst[0] if worst else Indication.TOTAL_PASSED,
        worst[1] if worst else None,
        level=level,
        signer=signer,
        signing_time=core.signing_time,
        # EN 319 102-1 §5.6.2.1: the best signature time starts as the validation time and only proofs of
        # existence move it earlier; reported so, as PAdES and CAdES do. The time logic above used the proofs
        # alone (``best_time``): "now" proves nothing about when a B-B signature was made.
        best_signature_time=best_time if best_time is not None else ctx.now,
        timestamps=(*timestamps, *archived, *deposit),
        signed_data=core.signed_data,
        errors=tuple(c[2] for c in candidates),
        warnings=tuple(warnings),
        french=checks.french(RuleOutcome.PASSED, RuleOutcome.PASSED, chain.french, signer),
    )


def _identify(
    ctx: XadesContext, signature: etree._Element, sig_id: str
) -> tuple[checks.Parts, x509.Certificate, list[x509.Certificate], Core] | SignatureReport:
    """The XAdES parts, the signing certificate (EN 319 102-1 §5.2.3) and the XML-DSig core, or the
    report of the first of them that fails."""
    parts = checks.locate_parts(signature)
    if isinstance(parts, str):
        return checks.format_failure(ctx.name, sig_id, parts)
    cert, chain_certs = checks.identify_signing_certificate(parts, ctx.policy.extra_certificates)
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
        signer = checks.signer_of(cert)
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
    return parts, cert, chain_certs, core


async def _signature_timestamps(
    ctx: XadesContext, signature: etree._Element, parts: checks.Parts, embedded: ValidationData
) -> tuple[list[TimestampInfo], list[tuple[Indication, SubIndication | None, str]]]:
    """Signature timestamps (XAdES-T): each must hold; valid ones are proofs of existence."""
    timestamps: list[TimestampInfo] = []
    problems: list[tuple[Indication, SubIndication | None, str]] = []
    signature_value = signature.find("ds:SignatureValue", NS)
    for element in find_signature_timestamps(parts.qualifying_properties):
        assert signature_value is not None  # signxml verified it exists
        outcome = await validate_signature_timestamp(element, signature_value, ctx.validation_context([], embedded))
        if outcome.time is not None:
            timestamps.append(
                TimestampInfo(
                    "signature",
                    outcome.time,
                    outcome.tsa,
                    outcome.passed,
                    outcome.detail,
                    tsa_certificate=outcome.tsa_certificate,
                )
            )
        if not outcome.passed:
            problems.append((outcome.indication, outcome.subindication, f"signature timestamp: {outcome.detail}"))
    return timestamps, problems
