"""Revocation data and proofs of existence against the clock: no timing makes a bad signer pass.

1. Revocation data fetched after the validation time. A run reads its validation time once, before
   anything is fetched; the OCSP answer of a signer validated later in the run (the second signer of a
   co-signed CMS, a late file of a bid) is dated after it. certvalidator's legacy freshness rule took
   such an answer for "too new" and dropped it, and the issuing CA's CRL, issued before the revocation
   (the test PKI's CRL for "revoked-before" is from t0 - 3 days, the revocation from t0 - 1 day), then
   said "good": a revoked co-signer came out TOTAL_PASSED whenever more than a second passed between the
   clock reading and its OCSP fetch (a loaded machine). The tests pin that lag: the validation time is
   set in the past, so the fetched answer is always after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import crl

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.validate import validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.signing import fetch_crl, sign_cms
from tests.signature.test_cades_multi import co_sign

BID = b"Offre du groupement: lot 4, prix 61 200 EUR HT"
LAGS = (timedelta(seconds=2), timedelta(minutes=5))  # between the clock reading and the OCSP fetch


def policy(pki: TestPKI, **kw: object) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,), **kw)  # type: ignore[arg-type]


def test_the_issuing_cas_crl_does_not_list_the_revocation_yet(pki: TestPKI) -> None:
    """What makes the tests below able to fail: only the OCSP answer shows "revoked-before" revoked."""
    now = datetime.now(UTC)
    listed = crl.CertificateList.load(fetch_crl(pki, "interm", now))
    assert listed["tbs_cert_list"]["this_update"].native < pki.t0 - timedelta(days=1)  # before the revocation
    revoked = {entry["user_certificate"].native for entry in listed["tbs_cert_list"]["revoked_certificates"]}
    assert pki.cert("revoked-before").serial_number not in revoked


@pytest.mark.parametrize("lag", LAGS, ids=lambda d: f"{d.total_seconds():.0f}s")
def test_revoked_co_signer_fails_whatever_the_lag_to_its_ocsp_fetch(pki: TestPKI, lag: timedelta) -> None:
    p7s = co_sign(sign_cms(BID, pki), sign_cms(BID, pki, label="revoked-before"))
    at = datetime.now(UTC) - lag  # the run's clock reading, ``lag`` before any fetch
    ok, revoked = validate_files({"offre.p7s": p7s, "offre.txt": BID}, policy(pki, at=at))["offre.p7s"].signatures
    assert (ok.indication, ok.subindication) == (Indication.TOTAL_PASSED, None), ok.errors
    assert revoked.signer is not None and revoked.signer.common_name == "Rita Revoked-Before"
    assert (revoked.indication, revoked.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    # signer order changes nothing
    first, second = validate_files(
        {"offre.p7s": co_sign(sign_cms(BID, pki, label="revoked-before"), sign_cms(BID, pki)), "offre.txt": BID},
        policy(pki, at=at),
    )["offre.p7s"].signatures
    assert (first.indication, first.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    assert second.indication is Indication.TOTAL_PASSED


def test_revoked_pades_signer_fails_with_a_lag_too(pki: TestPKI, signed: dict[str, bytes]) -> None:
    """The same validation settings serve PAdES (bidproc.signature.context.REVOCATION)."""
    at = datetime.now(UTC) - LAGS[-1]
    sig = validate_file("offre.pdf", signed["revoked-before"], policy(pki, at=at)).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
