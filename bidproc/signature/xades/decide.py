"""The EN 319 102-1 decision for one XAdES signature once its evidence is gathered: the signing
certificate's chain with the time logic of §5.5 (:mod:`.poe_time`), then the level its material holds.

XAdES cannot use :mod:`bidproc.signature.decision` (pyhanko's AdES processes are bound to CMS), but it
asks the same questions in the same order: the chain at the validation time, the status of a signer
expired since at its proof of existence, the signer's own revocation data behind a TRY_LATER, and B-LT
only when the signature's own validation data validates its chain.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.generic_cms import CertvalidatorOperationResult
from pyhanko_certvalidator import ValidationContext

from bidproc.errors import Warning_
from bidproc.signature.expiry import Status, StatusAt, expired_at, expired_verdict, status_at
from bidproc.signature.report import Level, RuleOutcome, SubIndication, TimestampInfo
from bidproc.signature.xades import checks
from bidproc.signature.xades.archive import find_archive_timestamps, validate_archive_timestamp
from bidproc.signature.xades.context import XadesContext
from bidproc.signature.xades.core import Core
from bidproc.signature.xades.ltv import USP, ValidationData, coverage_context
from bidproc.signature.xades.poe_time import Chain, decide_unknown_status, judge_chain, validate_signer_certificate
from bidproc.signature.xades.timestamps import NS, find_signature_timestamps, validate_signature_timestamp

_DECIDED_FROM_EMBEDDED_DATA = {
    "REVOKED_NO_POE",
    "REVOKED_CA_NO_POE",
    "OUT_OF_BOUNDS_NO_POE",
    "OUT_OF_BOUNDS_NOT_REVOKED",
}


async def decide_chain(
    ctx: XadesContext,
    cert: x509.Certificate,
    chain_certs: list[x509.Certificate],
    embedded: ValidationData,
    best_time: datetime | None,
    signing_time: datetime | None,
) -> tuple[Chain, ValidationContext, asn1_x509.Certificate]:
    """Signing certificate and chain (EN 319 102-1 §5.2.6), then the time logic of §5.5."""
    # Online, the CA's current data first: the signature's own revocation values answer only when the CA's
    # sources cannot be reached (TRY_LATER), as they do offline (see XadesContext.validation_context).
    vc = ctx.validation_context(chain_certs, embedded, embedded_revocation=False)
    cert_asn1 = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    if ctx.policy.trust_anchors:
        op = await validate_signer_certificate(cert_asn1, vc)
        fallback = not ctx.policy.offline and embedded.has_revocation_values
        if fallback and op.error_subindic is AdESIndeterminate.TRY_LATER:
            vc = ctx.validation_context(chain_certs, embedded)
            op = await validate_signer_certificate(cert_asn1, vc)
    else:  # nothing can chain: do not fetch issuers/CRLs from the network just to learn that
        no_chain = AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND
        op = CertvalidatorOperationResult(success_result=None, error_subindic=no_chain)
    chain = judge_chain(op, cert, best_time, signing_time)
    others = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain_certs] + embedded.certificates
    if chain.outcome is None and best_time is not None and expired_at(cert_asn1, ctx.now) and ctx.policy.trust_anchors:
        # Expired since: certvalidator skipped revocation; the status at the proof of existence decides.
        found = await _status_at_poe(ctx, cert_asn1, best_time, others, embedded)
        changed = expired_verdict(found, best_time)
        if changed is not None:
            french = RuleOutcome.FAILED if changed[1] is SubIndication.REVOKED else RuleOutcome.NOT_CHECKED
            chain = Chain(changed, french)
    chain = await decide_unknown_status(
        chain,
        cert_asn1,
        best_time,
        signing_time,
        ctx.now,
        ctx.policy,
        other_certs=others,
        crls=[*ctx.policy.extra_crls, *embedded.crls],
        ocsps=[*ctx.policy.extra_ocsps, *embedded.ocsps],
        fetcher_backend=ctx.backend,
    )
    return chain, vc, cert_asn1


async def _status_at_poe(
    ctx: XadesContext, cert: asn1_x509.Certificate, best: datetime, others: list[Any], embedded: ValidationData
) -> StatusAt:
    """An expired signer's status at its proof of existence: online, on the CA's data first, and on the
    signature's own revocation values only when the CA cannot answer (as for the chain in decide_chain:
    an old CRL the signer embeds, fresh at ``best``, would otherwise be all certvalidator looks at)."""
    online = not ctx.policy.offline

    async def ask(with_embedded: bool) -> StatusAt:
        crls, ocsps = (list(embedded.crls), list(embedded.ocsps)) if with_embedded else ([], [])
        return await status_at(
            cert, best, ctx.policy, other_certs=others, crls=crls, ocsps=ocsps, fetcher_backend=ctx.backend
        )

    found = await ask(not online)
    if online and found.status is Status.UNKNOWN and embedded.has_revocation_values:
        found = await ask(True)
    return found


async def decide_level(
    ctx: XadesContext,
    signature: etree._Element,
    parts: checks.Parts,
    core: Core,
    cert: asn1_x509.Certificate,
    embedded: ValidationData,
    timestamps: list[TimestampInfo],
    vc: ValidationContext,
) -> tuple[Level, list[TimestampInfo], list[str]]:
    """B-T with a valid signature timestamp, B-LT when the own data validates the chain, B-LTA when every
    archive timestamp holds on B-LT: (level, archive timestamps to report, warnings)."""
    warnings: list[str] = []
    stamped = [t.time for t in timestamps if t.valid]
    level = Level.B_T if stamped else Level.B_B
    if level is Level.B_T and (embedded.certificates or embedded.has_revocation_values):
        gap = await _embedded_data_gap(ctx, parts, cert, embedded, min(stamped))
        if gap is None:
            level = Level.B_LT
        else:
            warnings.append(f"{Warning_.XADES_VALIDATION_DATA_INCOMPLETE.value}: {gap}: level B-T, not B-LT")
    archives = find_archive_timestamps(parts.qualifying_properties)
    reported: list[TimestampInfo] = []
    verified = 0
    for element in archives:
        outcome = await validate_archive_timestamp(
            ctx.tree, signature, parts.qualifying_properties, element, core.references, vc
        )
        if outcome.time is not None:
            reported.append(
                TimestampInfo(
                    "archive",
                    outcome.time,
                    outcome.tsa,
                    outcome.passed,
                    outcome.detail,
                    tsa_certificate=outcome.tsa_certificate,
                )
            )
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
    return level, reported, warnings


async def _embedded_data_gap(
    ctx: XadesContext,
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
