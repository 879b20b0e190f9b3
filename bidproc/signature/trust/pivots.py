"""Pivot LOTLs: how the LOTL's signers are found when they changed since the Official Journal anchor.

Commission Implementing Decision (EU) 2015/1505 art. 4: each pivot LOTL, listed in the current LOTL's
SchemeInformationURI, is signed by the signers the previous one announces for the LOTL itself. pyhanko
does this walk in ``eutl_fetch.bootstrap_lotl_signers`` but only over its own HTTP session and raising
on the first failure; this is the same walk over documents already at hand (fetched by
``cache.refresh`` or read from the cache), each pivot with its own status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from asn1crypto import x509
from pyhanko.sign.validation.qualified import eutl_parse

from bidproc.signature.trust.documents import Document, ListStatus, SignatureState, _check, _header, _with

MAX_PIVOTS = 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pivot_urls(lotl: Document) -> list[str]:
    """The pivots the LOTL names, oldest first (pyhanko's order); read before verification, only to fetch."""
    try:
        return sorted(eutl_parse.parse_lotl_unsafe(lotl.xml.decode("utf-8")).pivot_urls)[-MAX_PIVOTS:]
    except Exception:  # an unreadable LOTL names no pivot; its own check reports it
        return []


def bootstrap(
    lotl: Document, pivots: Mapping[str, Document], signers: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], list[ListStatus]]:
    """Walk the pivots from ``signers`` (the Official Journal's); returns the signers the newest pivot
    announces for the LOTL, and a status per pivot. Stops at the first pivot missing or not verifying."""
    current, statuses = list(signers), []
    for url in pivot_urls(lotl):
        doc = pivots.get(url)
        if doc is None:
            statuses.append(
                ListStatus("PIVOT", "EU", url, SignatureState.UNREADABLE, problem="pivot LOTL not available")
            )
            break
        try:
            issued = _header(doc.xml).issued
        except Exception:  # reported by _check
            issued = None
        # a pivot is old by nature: its signature is checked at its issue time, freshness does not apply
        status, content = _check(doc, "PIVOT", current, issued or EPOCH)
        self_refs = []
        if content is not None:
            try:
                refs = eutl_parse.parse_lotl_unsafe(content).references
                self_refs = [r for r in refs if eutl_parse.LOTL_RULE in r.scheme_rules]
            except Exception as exc:  # signed but malformed
                status = _with(status, problem=f"pivot content unreadable: {exc}")
        if not self_refs or not self_refs[0].tlso_certs:
            statuses.append(_with(status, problem=status.problem or "pivot names no LOTL signers"))
            break
        current = list(self_refs[0].tlso_certs)
        statuses.append(_with(status, expired=False, problem=None, used=True))
    return current, statuses
