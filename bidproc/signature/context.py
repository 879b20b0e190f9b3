"""From a :class:`ValidationPolicy` to pyhanko's validation settings, and the one async runner.

Why this exists: pyhanko's defaults are unsafe for us in three ways (DESIGN.md, "Technical notes"):
revocation checking is soft-fail, omitting a trust policy falls back to the OS trust store, and a
missing fetcher backend provisions its own HTTP session. Every validation in bidproc gets its
settings here, so none of those defaults can leak in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
from asn1crypto import crl, ocsp, x509
from pyhanko.sign.validation.policy_decl import (
    CertificateFetchingRule,
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import Fetchers
from pyhanko_certvalidator.ltv.poe import KnownPOE, POEType, digest_for_poe
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from bidproc.signature.policy import ValidationPolicy

T = TypeVar("T")

# EN 319 102-1 needs revocation status for the signer and every CA under the anchor: no soft-fail.
# OCSP or CRL, whichever is available (TS 119 172 "eithercheck").
# Retroactive: the validation time is read once, before anything is fetched, so every OCSP response
# fetched more than a second later (a slow run, a bid with many files) is issued after it. Without this,
# certvalidator drops such an answer as "too new" and falls back on an older CRL, which may predate the
# revocation: a revoked signer then passed. A status issued later is evidence of the status at the
# validation time, as in expiry.py: "good" later means good then; a revocation carries its own date
# (certvalidator compares it with a point-in-time validation's time; at "now" any revocation counts).
REVOCATION = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
    ),
    retroactive_revinfo=True,
)


# The signer's certificate must certify its key for signatures (RFC 5280 §4.2.1.3: digitalSignature or
# nonRepudiation/contentCommitment). pyhanko's AdES processes read the spec's key usage settings, whose
# default accepts any usage (its status classes' own default applies only outside the AdES processes), so a
# key certified for encryption alone passed. Timestamps keep pyhanko's own rule (the timeStamping EKU).
SIGNER_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)


@dataclass(frozen=True)
class Context:
    """What one validation run shares: the policy, its pyhanko spec, the validation time (the caller's)."""

    policy: ValidationPolicy
    spec: SignatureValidationSpec
    now: datetime

    def timing(self) -> ValidationTimingInfo:
        # point_in_time_validation=True when the caller asked for a past/future time: pyhanko then
        # treats the validation as historical (no fetching in NO_HISTORICAL_FETCH mode).
        return ValidationTimingInfo(
            validation_time=self.now, best_signature_time=self.now, point_in_time_validation=self.policy.at is not None
        )

    def deposit_poe(self, content_sha256: str) -> datetime | None:
        """The earliest proof of existence given by the caller (e.g. the deposit timestamp) for this content."""
        times = [t for digest, t in self.policy.proofs_of_existence if digest.lower() == content_sha256.lower()]
        return min(times) if times else None

    def spec_for(
        self, signature_value: bytes, poe: datetime | None, extra: LocalKnowledge | None = None
    ) -> SignatureValidationSpec:
        """The spec plus validation data found in the document and a proof of existence known elsewhere."""
        if poe is None and extra is None:
            return self.spec
        lk, ex = self.spec.local_knowledge, extra or LocalKnowledge()
        poes = list(lk.known_poes)
        if poe is not None:
            poes.append(KnownPOE(poe_type=POEType.PROVIDED, digest=digest_for_poe(signature_value), poe_time=poe))
        knowledge = LocalKnowledge(
            known_ocsps=lk.known_ocsps + ex.known_ocsps,
            known_crls=lk.known_crls + ex.known_crls,
            known_certs=lk.known_certs + ex.known_certs,
            known_poes=poes,
            nonrevoked_assertions=lk.nonrevoked_assertions,
        )
        return replace(self.spec, local_knowledge=knowledge)


class RunFetcherBackend(AIOHttpFetcherBackend):
    """One set of fetchers, hence one cache, for a whole validation run (the revocation "cache").

    pyhanko asks its backend for fresh fetchers for every validation operation, so each signature of a
    bid would fetch the same OCSP responses and CRLs again (and wait again on a responder that is down:
    failures are cached too). Within one run, an answer fetched once serves every signature.
    """

    def __init__(self, session: aiohttp.ClientSession, per_request_timeout: float) -> None:
        super().__init__(session, per_request_timeout=per_request_timeout)
        self._shared: Fetchers | None = None

    def get_fetchers(self) -> Fetchers:
        if self._shared is None:
            self._shared = super().get_fetchers()
        return self._shared


def validation_time(policy: ValidationPolicy, now: datetime | None) -> datetime:
    """The one validation time of a run: the caller's clock reading ``now`` (the pipeline and the CLI read
    theirs once and pass it down), else the point in time the policy asks for, else the clock, read here
    once for callers with no clock of their own (tests, benchmarks). Nothing below reads the clock."""
    if now is not None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("validation times must carry a time zone (use UTC)")
        return now
    return policy.at or datetime.now(UTC)


def build_context(policy: ValidationPolicy, session: aiohttp.ClientSession | None, now: datetime) -> Context:
    """pyhanko settings for ``policy`` at the validation time ``now``; ``session`` is required online and
    must be ``None`` offline."""
    anchors = [x509.Certificate.load(der) for der in policy.trust_anchors]
    # Never the OS trust store: an empty anchor list trusts nothing.
    cert_policy = CertValidationPolicySpec(trust_manager=SimpleTrustManager.build(anchors), revinfo_policy=REVOCATION)
    if policy.offline:
        # LOCAL_ONLY + NEVER_FETCH: pyhanko never provisions a fetcher, so no socket is ever opened.
        gathering = RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY,
            certificate_fetching_rule=CertificateFetchingRule.NEVER_FETCH,
        )
    else:
        if session is None:
            raise ValueError("online validation needs an aiohttp session")
        gathering = RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.ALWAYS_FETCH,
            fetcher_backend=RunFetcherBackend(session, per_request_timeout=policy.fetch_timeout_seconds),
        )
    knowledge = LocalKnowledge(
        known_certs=[x509.Certificate.load(der) for der in policy.extra_certificates],
        known_crls=[CRLContainer(crl.CertificateList.load(der)) for der in policy.extra_crls],
        known_ocsps=[c for der in policy.extra_ocsps for c in OCSPContainer.load_multi(ocsp.OCSPResponse.load(der))],
    )
    spec = SignatureValidationSpec(
        cert_validation_policy=cert_policy,
        revinfo_gathering_policy=gathering,
        local_knowledge=knowledge,
        key_usage_settings=SIGNER_KEY_USAGE,
    )
    return Context(policy=policy, spec=spec, now=now)


def run(policy: ValidationPolicy, work: Callable[[Context], Awaitable[T]], now: datetime) -> T:
    """Run ``work`` in a fresh event loop with one explicit HTTP session (none when offline)."""

    async def main() -> T:
        if policy.offline:
            return await work(build_context(policy, None, now))
        timeout = aiohttp.ClientTimeout(total=policy.fetch_timeout_seconds * 3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await work(build_context(policy, session, now))

    return asyncio.run(main())
