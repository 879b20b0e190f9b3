"""Revocation data and proofs of existence against the clock: no timing makes a bad signer pass.

1. Revocation data fetched after the validation time. A run reads its validation time once, before
   anything is fetched; the OCSP answer of a signer validated later in the run (the second signer of a
   co-signed CMS, a late file of a bid) is dated after it. certvalidator's legacy freshness rule took
   such an answer for "too new" and dropped it, and the issuing CA's CRL, issued before the revocation
   (the test PKI's CRL for "revoked-before" is from t0 - 3 days, the revocation from t0 - 1 day), then
   said "good": a revoked co-signer came out TOTAL_PASSED whenever more than a second passed between the
   clock reading and its OCSP fetch (a loaded machine). The tests pin that lag two ways: a validation
   time set in the past (point in time), and a second PKI whose OCSP responder's clock runs ahead (the
   production path, validation at "now"; an OCSP responder a few seconds fast does the same).
2. A proof of existence before the signing certificate's notBefore: the signature provably existed
   before its certificate was valid, TOTAL_FAILED/NOT_YET_VALID (EN 319 102-1 §5.5.4 4)b)).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import crl
from certomancer.integrations.animator import Animator, AnimatorArchStore
from werkzeug.serving import make_server

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SignatureReport, SubIndication
from bidproc.signature.validate import content_sha256, validate_file, validate_files
from tests.pki import TestPKI, build_pki
from tests.services import free_port
from tests.signature.cms_craft import add_signed_data_revinfo
from tests.signature.signing import fetch_crl, fetch_ocsp, make_pdf, sign_cms, sign_pdf
from tests.signature.test_cades_multi import co_sign
from tests.signature.test_revoked_no_poe import _xades_signed_by

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


@pytest.fixture(scope="module")
def fast_ocsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPKI]:
    """A PKI of its own whose OCSP responder answers as of 5 s from now (its other services keep time)."""
    port = free_port()
    built = build_pki(tmp_path_factory.mktemp("pki-fast-ocsp"), port, free_port())
    animator = Animator(AnimatorArchStore({built.arch.arch_label: built.arch}), with_web_ui=False)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if "/ocsp/" in str(environ.get("PATH_INFO", "")):
            environ["HTTP_X_CERTOMANCER_FAKE_TIME"] = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        return animator(environ, start_response)

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="certomancer-fast-ocsp", daemon=True)
    thread.start()
    try:
        yield built
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_ocsp_answers_dated_after_now_still_count_for_every_format(fast_ocsp: TestPKI) -> None:
    pki = fast_ocsp
    p7s = co_sign(sign_cms(BID, pki), sign_cms(BID, pki, label="revoked-before"))
    ok, revoked = validate_files({"offre.p7s": p7s, "offre.txt": BID}, policy(pki))["offre.p7s"].signatures
    assert (ok.indication, ok.subindication) == (Indication.TOTAL_PASSED, None), ok.errors
    assert (revoked.indication, revoked.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    pdf = sign_pdf(make_pdf(), pki, label="revoked-before")
    sig = validate_file("offre.pdf", pdf, policy(pki)).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    # XAdES B-B (no timestamp): revoked, nothing proves the signature existed before: REVOKED_NO_POE
    xml = validate_file("offre.xml", _xades_signed_by(pki, "revoked-before"), policy(pki)).signatures[0]
    assert (xml.indication, xml.subindication) == (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE), xml.errors
    good = validate_file("offre.xml", _xades_signed_by(pki, "signer"), policy(pki)).signatures[0]
    assert good.indication is Indication.TOTAL_PASSED, good.errors


# --- proof of existence before the certificate -------------------------------------------------------------


@pytest.fixture(scope="module")
def b_lt(pki: TestPKI) -> bytes:
    """A CAdES B-LT .p7m (the signer's OCSP answer and the root's CRL embedded): validates offline."""
    now = datetime.now(UTC)
    p7m = sign_cms(BID, pki, detached=False)
    return add_signed_data_revinfo(p7m, [fetch_ocsp(pki, "signer", now)], [fetch_crl(pki, "root", now)])


def _issued(pki: TestPKI) -> datetime:
    issued: datetime = pki.cert("signer")["tbs_certificate"]["validity"]["not_before"].native
    return issued


def _with_deposit(pki: TestPKI, name: str, data: bytes, when: datetime) -> SignatureReport:
    deposit = ((content_sha256(data), when),)
    report = validate_file(name, data, policy(pki, offline=True, proofs_of_existence=deposit))
    assert not report.problems and len(report.signatures) == 1
    return report.signatures[0]


def test_cades_deposit_before_the_certificate_is_not_yet_valid(pki: TestPKI, b_lt: bytes) -> None:
    early = _issued(pki) - timedelta(days=1)
    sig = _with_deposit(pki, "offre.txt.p7m", b_lt, early)
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.NOT_YET_VALID)
    assert sig.best_signature_time == early  # the deposit counts (pyhanko's with-time process ignores it)
    assert sig.level is Level.B_LT  # a failed signature keeps the level its data shows
    assert sig.french_rule is not None and not sig.french_rule.bottom_line
    assert sig.french_rule.certificate_valid_at_signing_time is RuleOutcome.FAILED


def test_cades_deposit_after_the_certificate_is_the_best_signature_time(pki: TestPKI, b_lt: bytes) -> None:
    after = _issued(pki) + timedelta(days=1)
    sig = _with_deposit(pki, "offre.txt.p7m", b_lt, after)
    assert (sig.indication, sig.subindication, sig.level) == (Indication.TOTAL_PASSED, None, Level.B_LT), sig.errors
    assert sig.best_signature_time == after
    assert [t.time for t in sig.timestamps if t.kind == "deposit"] == [after]


@pytest.mark.parametrize("level", ["B-B", "B-LT"])
def test_pades_deposit_before_the_certificate_is_not_yet_valid(
    pki: TestPKI, signed: dict[str, bytes], level: str
) -> None:
    early = _issued(pki) - timedelta(seconds=1)
    deposit = ((content_sha256(signed[level]), early),)
    sig = validate_file("offre.pdf", signed[level], policy(pki, proofs_of_existence=deposit)).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.NOT_YET_VALID)
    assert sig.best_signature_time == early


def test_xades_deposit_before_the_certificate_is_not_yet_valid(pki: TestPKI) -> None:
    xml = _xades_signed_by(pki, "signer")
    for when, expected in (
        (_issued(pki) - timedelta(seconds=1), (Indication.TOTAL_FAILED, SubIndication.NOT_YET_VALID)),
        (_issued(pki) + timedelta(days=1), (Indication.TOTAL_PASSED, None)),
    ):
        deposit = ((content_sha256(xml), when),)
        sig = validate_file("offre.xml", xml, policy(pki, proofs_of_existence=deposit)).signatures[0]
        assert (sig.indication, sig.subindication) == expected, sig.errors
        assert sig.best_signature_time == when
