"""What one XAdES validation run shares: the file, the policy, the validation time, one fetcher backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.xades.ltv import ValidationData


@dataclass(frozen=True)
class XadesContext:
    """``now`` is the validation time the caller read once (the pipeline's or the CLI's clock)."""

    name: str
    data: bytes
    tree: etree._ElementTree
    policy: ValidationPolicy
    detached: Mapping[str, bytes]
    backend: AIOHttpFetcherBackend | None
    now: datetime

    def validation_context(
        self, extra_certs: list[x509.Certificate], embedded: ValidationData, *, embedded_revocation: bool = True
    ) -> ValidationContext:
        """``embedded``: the signature's own validation data (B-LT). Its certificates are always used; its
        revocation values offline, and online unless ``embedded_revocation`` is False.

        pyhanko-certvalidator decides from the CRLs it holds before fetching any: handed a signer's embedded
        CRL (a genuine one, issued before the revocation and not yet past its nextUpdate) it never asks the
        CA, so the signature would choose the data that judges it. The signer's chain is therefore validated
        online on fetched data first (:func:`.decide.decide_chain`).
        """
        policy = self.policy
        others = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in extra_certs]
        others += [asn1_x509.Certificate.load(der) for der in policy.extra_certificates]
        others += embedded.certificates
        use_embedded = embedded_revocation or policy.offline
        crls: list[bytes | asn1_crl.CertificateList] = [*policy.extra_crls, *(embedded.crls if use_embedded else [])]
        ocsps: list[bytes | asn1_ocsp.OCSPResponse] = [
            *policy.extra_ocsps,
            *(embedded.ocsps if use_embedded else []),
        ]
        return ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(der) for der in policy.trust_anchors],  # never the OS store
            other_certs=others,
            # Not ``now`` unless the caller asked for a point in time (policy.at): a fixed moment makes
            # certvalidator a point-in-time validation, and revocation data fetched during the validation is
            # dated after any instant read before it ("too new"). Without one, certvalidator takes the moment
            # it starts at, as pyhanko's own validation does.
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
