"""EU trusted lists (ETSI TS 119 612): verify each list's XAdES signature and load the usable ones.

pyhanko's ``sign.validation.qualified.eutl_parse`` parses the lists and verifies their signatures (with
signxml). What it does not do, and this module adds: a per-list outcome instead of an exception (a
broken, unsigned, expired or unannounced national list is reported and skipped, never fatal), the
freshness check against ``NextUpdate``, and local files matched to the LOTL's pointers by territory.

The LOTL is verified against the certificates published in the Official Journal (pyhanko bundles them:
``ojeu_bootstrap_lotl_tlso_certs``), unless the caller gives other signers; each national list against
the signers the verified LOTL announces for its territory. A list's signature is checked at the list's
own issue time (the signing certificate must have been valid when the list was issued), which is the
time pyhanko uses for pivot LOTLs too; whether the list is still current is the separate ``NextUpdate``
check against the validation time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from asn1crypto import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]
from pyhanko.sign.validation.qualified import eutl_parse
from pyhanko.sign.validation.qualified.tsp import (
    CAServiceInformation,
    QTSTServiceInformation,
    QualifiedServiceInformation,
    TSPRegistry,
)

from bidproc.signature.trust.authorities import AuthorityIndex
from bidproc.signature.trust.documents import (
    _PARSER,
    TSL_NS,
    Document,
    ListStatus,
    SignatureState,
    _check,
    _header,
    _with,
)


@dataclass(frozen=True, eq=False)
class TrustedLists:
    """The qualified services of every usable list, and the status of every list seen."""

    registry: TSPRegistry
    lists: tuple[ListStatus, ...]
    territory_of: dict[QualifiedServiceInformation, str] = field(default_factory=dict)

    @cached_property
    def ca_index(self) -> AuthorityIndex:
        return AuthorityIndex(self.registry.known_certificate_authorities)

    @cached_property
    def tsa_index(self) -> AuthorityIndex:
        return AuthorityIndex(self.registry.known_timestamp_authorities)

    @property
    def usable(self) -> bool:
        return any(s.used and s.kind == "TL" for s in self.lists)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{s.kind} {s.territory} ({s.source}): {s.problem}" for s in self.lists if s.problem)


def _complete_history(content: str) -> str:
    """Give each ServiceHistoryInstance the certificates of its service when it names none.

    Written by hand because pyhanko 0.38 registers a history entry only under the X509Certificate
    elements of that entry, while real lists identify past states by subject name or SKI only (TS 119
    612 clause 5.6: a history instance describes the same service). Without this, a service withdrawn
    today was never qualified as far as pyhanko can tell, even for a signature made while it was granted.
    """
    root = etree.fromstring(content.encode("utf-8"), _PARSER)
    ns = {"t": TSL_NS}
    for service in root.iterfind(".//t:TSPService", ns):
        current = service.findall("t:ServiceInformation/t:ServiceDigitalIdentity/t:DigitalId[t:X509Certificate]", ns)
        for sdi in service.iterfind("t:ServiceHistory/t:ServiceHistoryInstance/t:ServiceDigitalIdentity", ns):
            if sdi.find("t:DigitalId/t:X509Certificate", ns) is None:
                for digital_id in current:
                    sdi.append(deepcopy(digital_id))
    return str(etree.tostring(root, encoding="unicode"))


def _register(
    content: str, registry: TSPRegistry, territory: str, territory_of: dict[QualifiedServiceInformation, str]
) -> int:
    """Parse every service first, then register: a list that fails half-way adds nothing."""
    services: list[QualifiedServiceInformation] = []
    gen = eutl_parse.read_qualified_service_definitions(_complete_history(content))
    services.extend(gen)
    for sd in services:
        if isinstance(sd, CAServiceInformation):
            registry.register_ca(sd)
        elif isinstance(sd, QTSTServiceInformation):
            registry.register_tst(sd)
        territory_of[sd] = territory
    return len(services)


def load(
    lotl: Document | None,
    nationals: Sequence[Document],
    at: datetime,
    lotl_signers: Sequence[x509.Certificate] | None = None,
    pivots: Mapping[str, Document] | None = None,
) -> TrustedLists:
    """Verify the LOTL, then each national list against the signers the LOTL announces for its territory.

    Never raises for a bad list: each gets a :class:`ListStatus` and the usable ones fill the registry.
    An expired LOTL is reported but still names the national lists' signers (it is a pointer list);
    an expired national list is skipped. When the LOTL does not verify under ``lotl_signers`` (the
    Official Journal's by default), the ``pivots`` (URL -> document) it names are walked to find its
    current signers.
    """
    statuses: list[ListStatus] = []
    announced: dict[str, list[x509.Certificate]] = {}
    if lotl is not None:
        signers = list(lotl_signers) if lotl_signers else eutl_parse.ojeu_bootstrap_lotl_tlso_certs()
        status, content = _check(lotl, "LOTL", signers, at)
        if content is None and status.signature == SignatureState.INVALID and pivots:
            from bidproc.signature.trust.pivots import bootstrap  # signers changed since the anchor

            signers, pivot_statuses = bootstrap(lotl, pivots, signers)
            statuses += pivot_statuses
            status, content = _check(lotl, "LOTL", signers, at)
        if content is not None:
            try:
                parsed = eutl_parse.parse_lotl_unsafe(content)  # content is the verified part
                for ref in parsed.references:
                    if eutl_parse.LOTL_RULE not in ref.scheme_rules:
                        announced.setdefault(ref.territory.upper(), []).extend(ref.tlso_certs)
                status = _with(status, used=True, services=len(announced))
            except Exception as exc:  # xsdata and pyhanko raise several types for malformed content
                status = _with(status, used=False, problem=f"LOTL content unreadable: {exc}")
        statuses.append(status)
    registry = TSPRegistry()
    territory_of: dict[QualifiedServiceInformation, str] = {}
    for doc in nationals:
        try:
            territory = _header(doc.xml).territory.upper()
        except Exception:  # reported by _check below
            territory = "?"
        status, content = _check(doc, "TL", announced.get(territory) if lotl is not None else None, at)
        if content is not None and not status.expired:
            try:
                count = _register(content, registry, status.territory, territory_of)
                status = _with(status, used=True, services=count)
            except Exception as exc:  # a malformed list is skipped, whatever the parser raised
                status = _with(status, problem=f"list content unreadable: {exc}")
        elif content is not None:
            status = _with(status, problem=f"{status.problem}: skipped")
        statuses.append(status)
    return TrustedLists(registry=registry, lists=tuple(statuses), territory_of=territory_of)
