"""A trusted list document and its check: XAdES signature against announced signers, freshness.

Split out of :mod:`bidproc.signature.trust.lists` so that the loader (``lists``), the pivot-LOTL walk
(``pivots``) and the cache (``cache``) all build on it without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from asn1crypto import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.qualified import eutl_parse

TSL_NS = "http://uri.etsi.org/02231/v2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class SignatureState:
    VALID = "valid"
    INVALID = "invalid"  # a signature is there and does not verify against the announced signers
    UNSIGNED = "unsigned"
    NOT_ANNOUNCED = "not_announced"  # no LOTL names signers for this list's territory
    UNREADABLE = "unreadable"  # not a trusted list at all


@dataclass(frozen=True)
class Document:
    """A trusted list's bytes and where they came from."""

    source: str  # file path or URL
    xml: bytes
    fetched_at: datetime | None = None


@dataclass(frozen=True)
class ListStatus:
    """What became of one list: the ``bidproc trust show`` line and the report's basis."""

    kind: str  # "LOTL" | "TL"
    territory: str
    source: str
    signature: str  # a SignatureState value
    issued: datetime | None = None
    next_update: datetime | None = None
    fetched_at: datetime | None = None
    expired: bool = False
    used: bool = False
    services: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class _Header:
    territory: str
    issued: datetime | None
    next_update: datetime | None
    signed: bool


def _header(xml: bytes) -> _Header:
    root = etree.fromstring(xml, _PARSER)
    if etree.QName(root).localname != "TrustServiceStatusList" or etree.QName(root).namespace != TSL_NS:
        raise ValueError("not an ETSI TS 119 612 TrustServiceStatusList")
    ns = {"t": TSL_NS, "ds": DS_NS}

    def when(path: str) -> datetime | None:
        text = root.findtext(path, namespaces=ns)
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")) if text and text.strip() else None

    return _Header(
        territory=(root.findtext("t:SchemeInformation/t:SchemeTerritory", namespaces=ns) or "?").strip(),
        issued=when("t:SchemeInformation/t:ListIssueDateTime"),
        next_update=when("t:SchemeInformation/t:NextUpdate/t:dateTime"),
        signed=root.find("ds:Signature", ns) is not None,
    )


def verified_content(doc: Document, signers: Sequence[x509.Certificate], issued: datetime | None) -> str:
    """The part of the list the signature covers (never the raw document: no wrapping), or raises.

    pyhanko 0.38 keeps the verification that returns the signed content private
    (``_validate_and_extract_tl_data_multiple_certs``); its public ``trust_list_to_registry`` checks the
    signer certificate at the current time only, which rejects a list issued under a since-expired signer.
    """
    if not signers:
        raise SignatureValidationError("no announced signer for this list")
    text = doc.xml.decode("utf-8")
    return eutl_parse._validate_and_extract_tl_data_multiple_certs(text, list(signers), validation_time=issued)


def _check(
    doc: Document, kind: str, signers: Sequence[x509.Certificate] | None, at: datetime
) -> tuple[ListStatus, str | None]:
    """(status, verified content or None when the list is not to be used)."""
    try:
        head = _header(doc.xml)
    except (etree.XMLSyntaxError, ValueError, UnicodeError) as exc:
        status = ListStatus(kind, "?", doc.source, SignatureState.UNREADABLE, problem=f"unreadable: {exc}")
        return status, None
    base = ListStatus(
        kind, head.territory, doc.source, SignatureState.UNSIGNED, head.issued, head.next_update, doc.fetched_at
    )
    if not head.signed:
        return _with(base, problem="the list is not signed: skipped"), None
    if signers is None:
        return _with(
            base, signature=SignatureState.NOT_ANNOUNCED, problem="no LOTL announces signers for it: skipped"
        ), None
    try:
        content = verified_content(doc, signers, head.issued)
    except (SignatureValidationError, ValueError) as exc:
        msg = exc.failure_message if isinstance(exc, SignatureValidationError) else str(exc)
        return _with(base, signature=SignatureState.INVALID, problem=f"signature does not verify: {msg[:300]}"), None
    # Dates and territory from what the signature covers, not from the raw document (a signed list
    # wrapped in an unsigned one must not lend it a fresh NextUpdate or another territory).
    try:
        signed = _header(content.encode("utf-8"))
    except (etree.XMLSyntaxError, ValueError) as exc:
        return _with(base, signature=SignatureState.INVALID, problem=f"signed content unreadable: {exc}"), None
    if (signed.territory, signed.issued) != (head.territory, head.issued):
        problem = "the signed list's territory or issue date differs from the document's: skipped"
        return _with(base, signature=SignatureState.INVALID, problem=problem), None
    status = _with(base, signature=SignatureState.VALID, next_update=signed.next_update)
    head = signed
    if head.next_update is None or head.next_update < at:
        return _with(status, expired=True, problem=f"expired (next update was due {head.next_update})"), content
    return status, content


def _with(status: ListStatus, **changes: Any) -> ListStatus:
    return replace(status, **changes)
