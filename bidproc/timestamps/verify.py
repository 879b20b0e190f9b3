"""Check an RFC 3161 timestamp response: our digest, a valid CMS signature, a TSA chaining to our roots.

pyhanko's ``validate_tst_signed_data`` does the CMS and chain work; this module only decides what
"valid" means for us: intact, cryptographically valid and trusted, or ``timestamp.invalid``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import tsp, x509

from bidproc.errors import BidprocError, Code


def verify_response(response_der: bytes, sha256_digest: bytes, roots_der: Sequence[bytes], *,
                    algorithm: str = "sha256") -> datetime:
    """The token's time, once checked; raises ``timestamp.invalid`` with the reason otherwise."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    try:
        response = tsp.TimeStampResp.load(response_der)
        signed_data = response["time_stamp_token"]["content"]
        imprint_algorithm = signed_data["encap_content_info"]["content"].parsed["message_imprint"]["hash_algorithm"][
            "algorithm"].native
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: DER nested too deep
        raise BidprocError(Code.TIMESTAMP_INVALID, f"not a timestamp response: {exc}") from exc
    if imprint_algorithm != algorithm:
        raise BidprocError(Code.TIMESTAMP_INVALID, f"timestamp imprint uses {imprint_algorithm}, expected {algorithm}")
    # Revocation of the TSA certificate is not checked here (no fetching from deep inside the service);
    # the archived token keeps its chain for a full validation later.
    context = ValidationContext(trust_roots=[x509.Certificate.load(r) for r in roots_der], allow_fetching=False,
                                revocation_mode="soft-fail")
    try:
        status = asyncio.run(validate_tst_signed_data(signed_data, context, lambda _algo: sha256_digest))
    except Exception as exc:  # pyhanko raises several kinds for a broken token: all mean "not valid"
        raise BidprocError(Code.TIMESTAMP_INVALID, f"timestamp token does not validate: {exc}") from exc
    if not status.get("intact"):
        raise BidprocError(Code.TIMESTAMP_INVALID, "timestamp token covers other data")
    if not status.get("valid"):
        raise BidprocError(Code.TIMESTAMP_INVALID, "timestamp token signature is not valid")
    if status.get("validation_path") is None or status.get("trust_problem_indic") is not None:
        raise BidprocError(Code.TIMESTAMP_INVALID, "timestamp authority does not chain to a configured root")
    when: datetime = status["timestamp"]
    return when
