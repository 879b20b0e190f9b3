"""XAdES SignatureTimeStamp validation: the part signxml leaves out.

signxml's ``XAdESVerifier`` ignores unsigned properties, so a XAdES-T signature would pass as a plain
XAdES-BES whether its timestamp is genuine or not. What is hand-written here is only the XAdES glue
(ETSI EN 319 132-1 §5.3): find each ``xades:SignatureTimeStamp``, canonicalise the ``ds:SignatureValue``
element with the method the timestamp names (inclusive C14N 1.0 by default) and derive the message imprint
the token must carry. The RFC 3161 token itself (TSTInfo, imprint comparison, CMS signature, TSA chain to
the trust anchors, revocation) is checked by pyhanko's EN 319 102-1 §5.4 timestamp validation.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from cryptography.hazmat.primitives import hashes
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation.ades import ades_timestamp_validation_internal
from pyhanko.sign.validation.generic_cms import get_hash_spec_for_tst_digest
from pyhanko_certvalidator import ValidationContext

from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.c14n import C14N_10, METHODS, canonicalise

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES}

# The canonicalisation methods we compute (``xades_c14n``: C14N 1.0 and 1.1 apart, exclusive C14N).
C14N_METHODS = frozenset(METHODS)


@dataclass(frozen=True)
class TimestampOutcome:
    """One SignatureTimeStamp: its time when it could be read, and whether it holds."""

    passed: bool
    indication: Indication
    subindication: SubIndication | None
    time: datetime | None
    tsa: str | None
    detail: str
    tsa_certificate: bytes | None = None  # DER, for the qualification step (QTST or not)


def find_signature_timestamps(qualifying_properties: etree._Element) -> list[etree._Element]:
    path = "xades:UnsignedProperties/xades:UnsignedSignatureProperties/xades:SignatureTimeStamp"
    return list(qualifying_properties.findall(path, NS))


def _failed(sub: SubIndication, detail: str, indication: Indication = Indication.TOTAL_FAILED) -> TimestampOutcome:
    return TimestampOutcome(False, indication, sub, None, None, detail)


def _map_subindication(name: str) -> SubIndication:
    return SubIndication.__members__.get(name, SubIndication.GENERIC)


def timestamp_method(timestamp: etree._Element) -> str:
    """The canonicalisation method a XAdES timestamp names (inclusive C14N 1.0 by default)."""
    c14n = timestamp.find("ds:CanonicalizationMethod", NS)
    return str(c14n.get("Algorithm", C14N_10)) if c14n is not None else C14N_10


async def validate_signature_timestamp(
    timestamp: etree._Element, signature_value: etree._Element, context: ValidationContext
) -> TimestampOutcome:
    """Validate one ``xades:SignatureTimeStamp`` over ``signature_value`` against ``context``."""
    method = timestamp_method(timestamp)
    try:
        imprint_source = canonicalise(signature_value, method)
    except ValueError as exc:
        return _failed(SubIndication.FORMAT_FAILURE, str(exc))
    return await validate_timestamp(
        timestamp, imprint_source, context, "message imprint does not match the canonicalised SignatureValue"
    )


async def validate_timestamp(
    timestamp: etree._Element, imprint_source: bytes, context: ValidationContext, mismatch: str
) -> TimestampOutcome:
    """Validate the RFC 3161 token of a XAdES timestamp property whose input is ``imprint_source``.

    ``mismatch`` is what a wrong message imprint means, for the report.
    """
    method = timestamp_method(timestamp)
    tokens = timestamp.findall("xades:EncapsulatedTimeStamp", NS)
    if len(tokens) != 1 or timestamp.find("xades:XMLTimeStamp", NS) is not None:
        return _failed(
            SubIndication.FORMAT_FAILURE, "expected exactly one EncapsulatedTimeStamp (XMLTimeStamp unsupported)"
        )
    try:
        der = base64.b64decode("".join((tokens[0].text or "").split()), validate=True)
        content_info = cms.ContentInfo.load(der, strict=True)
        if content_info["content_type"].native != "signed_data":
            return _failed(SubIndication.FORMAT_FAILURE, "timestamp token is not a CMS SignedData")
        signed_data = content_info["content"]
        _ = signed_data.native  # force asn1crypto's lazy parsing now, so garbage fails here and not mid-validation
    except (ValueError, TypeError, binascii.Error) as exc:
        return _failed(SubIndication.FORMAT_FAILURE, f"unreadable timestamp token: {exc}")

    def expected_imprint(md_algorithm: str) -> bytes:
        digest = hashes.Hash(get_hash_spec_for_tst_digest(md_algorithm))
        digest.update(imprint_source)
        return digest.finalize()

    try:
        # pyhanko's EN 319 102-1 §5.4 timestamp validation (internal API, pinned by pyhanko==0.38.*): it
        # gives the ETSI sub-indication directly (HASH_FAILURE for a wrong imprint, chain problems, ...).
        result = await ades_timestamp_validation_internal(signed_data, context, expected_imprint, None)
    except Exception as exc:  # a hostile token must not take the whole report down; say what happened
        return _failed(SubIndication.FORMAT_FAILURE, f"timestamp token could not be validated: {exc}")
    status = result.api_status
    time = getattr(status, "timestamp", None)
    cert = getattr(status, "signing_cert", None)
    tsa = cert.subject.human_friendly if cert is not None else None
    if result.ades_subindic == AdESPassed.OK:
        tsa_der: bytes | None = cert.dump() if cert is not None else None
        return TimestampOutcome(True, Indication.TOTAL_PASSED, None, time, tsa, f"valid ({method})", tsa_der)
    name = str(getattr(result.ades_subindic, "name", "GENERIC"))  # the concrete subclasses are enums
    failed = result.ades_subindic.status.name == "FAILED"
    indication = Indication.TOTAL_FAILED if failed else Indication.INDETERMINATE
    why = {
        "HASH_FAILURE": mismatch,
        "SIG_CRYPTO_FAILURE": "the token's CMS signature does not verify",
        "NO_CERTIFICATE_CHAIN_FOUND": "the TSA certificate does not chain to a trust anchor",
    }.get(name, result.failure_msg or name)
    return TimestampOutcome(False, indication, _map_subindication(name), time, tsa, why)
