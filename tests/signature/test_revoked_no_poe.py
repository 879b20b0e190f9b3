"""Revoked signer without a proof of existence before the revocation: INDETERMINATE/REVOKED_NO_POE.

EN 319 102-1 §5.2.6 decides on the signing certificate's own revocation: a certificate shown revoked,
with nothing proving the signature existed before (no signature timestamp, no deposit; the claimed
signing time proves nothing), is REVOKED_NO_POE, not TRY_LATER "as if the data were missing", even
when the status of its issuing CA is not known. A proof of existence from the revocation on is
TOTAL_FAILED/REVOKED; one before it leaves the (unknown) CA status to decide: TRY_LATER.

The test PKI: "revoked-before" was revoked a day before the session's t0, "revoked-after" an hour
after; the issuing CA's own status is only in the root's CRL, so "OCSP only" leaves it unknown.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.validate import content_sha256, validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.cms_craft import add_signed_data_revinfo, sign_cms_claiming
from tests.signature.signing import fetch_crl, fetch_ocsp, sign_cms

BID = b"Acte d'engagement: lot 1, montant 98 000 EUR HT"
REVOKED_NO_POE = (Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)


@pytest.fixture(scope="module")
def later(pki: TestPKI) -> datetime:
    """A day after t0: "revoked-after" has been revoked for 23 hours."""
    return pki.t0 + timedelta(days=1)


@pytest.fixture(scope="module")
def revinfo(pki: TestPKI, later: datetime) -> dict[str, bytes]:
    now = datetime.now(UTC)
    return {
        "after": fetch_ocsp(pki, "revoked-after", later),
        "before": fetch_ocsp(pki, "revoked-before", now),
        "good": fetch_ocsp(pki, "signer", now),
        "crl-later": fetch_crl(pki, "root", later),
        "crl-now": fetch_crl(pki, "root", now),
    }


def policy(pki: TestPKI, **kw: object) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,), **kw)  # type: ignore[arg-type]


def only(pki: TestPKI, name: str, data: bytes, pol: ValidationPolicy) -> SignatureReport:
    files = {name: data, "acte.txt": BID} if name.endswith(".p7s") else {name: data}
    report = validate_files(files, pol)[name]
    assert not report.problems and len(report.signatures) == 1
    return report.signatures[0]


# --- PAdES B-B -------------------------------------------------------------------------------------


def test_pades_b_b_revoked_after_signing_offline(
    pki: TestPKI, signed: dict[str, bytes], revinfo: dict[str, bytes], later: datetime
) -> None:
    pdf = signed["revoked-after-B-B"]
    for extra_crls in ((revinfo["crl-later"],), ()):  # with the CA's status, and without it
        pol = policy(pki, offline=True, at=later, extra_ocsps=(revinfo["after"],), extra_crls=extra_crls)
        sig = validate_file("acte.pdf", pdf, pol).signatures[0]
        assert (sig.indication, sig.subindication) == REVOKED_NO_POE, (extra_crls, sig.errors)
        assert sig.french_rule is not None and not sig.french_rule.bottom_line


def test_pades_b_b_revoked_data_in_the_dss_offline(
    pki: TestPKI, signed: dict[str, bytes], revinfo: dict[str, bytes], later: datetime
) -> None:
    """The OCSP answer (REVOKED an hour after signing) added to the DSS afterwards, validated a day later."""
    import io

    from asn1crypto import crl, ocsp
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    pdf = signed["revoked-after-B-B"]
    cms_blob = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].pkcs7_content
    for crls in ([crl.CertificateList.load(revinfo["crl-later"])], []):
        out = io.BytesIO(pdf)
        answers = [ocsp.OCSPResponse.load(revinfo["after"])]
        DocumentSecurityStore.add_dss(out, cms_blob, certs=pki.chain("revoked-after"), ocsps=answers, crls=crls)
        sig = validate_file("acte.pdf", out.getvalue(), policy(pki, offline=True, at=later)).signatures[0]
        assert (sig.indication, sig.subindication) == REVOKED_NO_POE, (crls, sig.errors)
        assert not any(w.startswith("signature.offline_no_revocation") for w in sig.warnings)


def test_pades_b_b_revoked_online(pki: TestPKI, signed: dict[str, bytes], pdf: bytes) -> None:
    from tests.signature.signing import sign_pdf

    sig = validate_file("acte.pdf", sign_pdf(pdf, pki, label="revoked-before", level="B-B"), policy(pki)).signatures[0]
    assert (sig.indication, sig.subindication) == REVOKED_NO_POE


# --- CAdES B-B -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acte.txt.p7s", "acte.txt.p7m"])
def test_cades_b_b_claiming_a_time_before_the_revocation_online(pki: TestPKI, name: str) -> None:
    """Revoked yesterday, the signer claims to have signed two days ago: only a claim, no proof."""
    claimed = pki.t0 - timedelta(days=2)
    p7 = sign_cms_claiming(BID, pki, "revoked-before", claimed, detached=name.endswith(".p7s"))
    sig = only(pki, name, p7, policy(pki))
    assert (sig.indication, sig.subindication) == REVOKED_NO_POE
    assert sig.signing_time == claimed and sig.best_signature_time != claimed


@pytest.mark.parametrize("name", ["acte.txt.p7s", "acte.txt.p7m"])
def test_cades_b_b_embedded_ocsp_shows_revoked_offline(
    pki: TestPKI, revinfo: dict[str, bytes], later: datetime, name: str
) -> None:
    """The OCSP answer (REVOKED an hour after signing) in SignedData.crls, validated offline a day later."""
    p7 = sign_cms(BID, pki, label="revoked-after", detached=name.endswith(".p7s"), timestamp=False)
    for crls in ([revinfo["crl-later"]], []):
        embedded = add_signed_data_revinfo(p7, [revinfo["after"]], crls)
        sig = only(pki, name, embedded, policy(pki, offline=True, at=later))
        assert (sig.indication, sig.subindication) == REVOKED_NO_POE, (crls, sig.errors)
    # the same file validated before the revocation date: nothing revoked yet, the CA's status decides
    sig = only(pki, name, add_signed_data_revinfo(p7, [revinfo["after"]]), policy(pki, offline=True))
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


# --- with a proof of existence ------------------------------------------------------------------------


def test_timestamp_after_the_revocation_is_revoked(pki: TestPKI, revinfo: dict[str, bytes]) -> None:
    """B-T signed after the revocation, only the signer's OCSP embedded: TOTAL_FAILED/REVOKED, not TRY_LATER."""
    p7m = add_signed_data_revinfo(sign_cms(BID, pki, label="revoked-before", detached=False), [revinfo["before"]])
    sig = only(pki, "acte.txt.p7m", p7m, policy(pki, offline=True))
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)


def test_proof_before_the_revocation_leaves_the_ca_status_to_decide(
    pki: TestPKI, revinfo: dict[str, bytes], later: datetime
) -> None:
    """Timestamped (or deposited) before the revocation: the revocation does not decide; without the CA's
    status the answer stays TRY_LATER, and with it the signature passes."""
    p7m = sign_cms(BID, pki, label="revoked-after", detached=False)
    sig = only(
        pki, "acte.txt.p7m", add_signed_data_revinfo(p7m, [revinfo["after"]]), policy(pki, offline=True, at=later)
    )
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    full = add_signed_data_revinfo(p7m, [revinfo["after"]], [revinfo["crl-later"]])
    assert only(pki, "acte.txt.p7m", full, policy(pki, offline=True, at=later)).indication is Indication.TOTAL_PASSED

    bare = sign_cms(BID, pki, label="revoked-after", detached=False, timestamp=False)
    deposit = ((content_sha256(BID), pki.t0),)  # the platform's deposit receipt, before the revocation
    pol = policy(pki, offline=True, at=later, proofs_of_existence=deposit)
    sig = only(pki, "acte.txt.p7m", add_signed_data_revinfo(bare, [revinfo["after"]]), pol)
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


def test_a_good_answer_is_never_turned_into_revoked(pki: TestPKI, revinfo: dict[str, bytes]) -> None:
    p7m = add_signed_data_revinfo(sign_cms(BID, pki, detached=False, timestamp=False), [revinfo["good"]])
    sig = only(pki, "acte.txt.p7m", p7m, policy(pki, offline=True))
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    # another certificate's REVOKED answer says nothing about this signer
    other = add_signed_data_revinfo(sign_cms(BID, pki, detached=False, timestamp=False), [revinfo["before"]])
    sig = only(pki, "acte.txt.p7m", other, policy(pki, offline=True))
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


# --- XAdES B-B (the same decision, through xades_time.decide_unknown_status) ------------------------


def _xades_signed_by(pki: TestPKI, label: str) -> bytes:
    from cryptography import x509 as c_x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key
    from lxml import etree
    from signxml import SignatureConstructionMethod, SignatureMethod
    from signxml.xades import XAdESSigner

    key = load_der_private_key(pki.key(label).dump(), password=None)
    method = SignatureMethod.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else SignatureMethod.RSA_SHA256
    certs = [c_x509.load_der_x509_certificate(c.dump()) for c in [pki.cert(label), *pki.chain(label)]]
    content = etree.Element("Offre")
    content.text = BID.decode()
    signer = XAdESSigner(method=SignatureConstructionMethod.enveloping, signature_algorithm=method)
    return bytes(etree.tostring(signer.sign(content, key=key, cert=certs)))


def test_xades_b_b_revoked_after_signing_offline(pki: TestPKI, revinfo: dict[str, bytes], later: datetime) -> None:
    xml = _xades_signed_by(pki, "revoked-after")
    for extra_crls in ((revinfo["crl-later"],), ()):  # with the CA's status, and without it
        pol = policy(pki, offline=True, at=later, extra_ocsps=(revinfo["after"],), extra_crls=extra_crls)
        sig = only(pki, "offre.xml", xml, pol)
        assert (sig.indication, sig.subindication) == REVOKED_NO_POE, (extra_crls, sig.errors)
        assert sig.french_rule is not None and not sig.french_rule.bottom_line
    # a deposit before the revocation: the revocation does not decide; the CA's unknown status still does
    deposit = ((content_sha256(xml), pki.t0),)
    pol = policy(pki, offline=True, at=later, extra_ocsps=(revinfo["after"],), proofs_of_existence=deposit)
    sig = only(pki, "offre.xml", xml, pol)
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER), sig.errors
    # another certificate's REVOKED answer is never taken for the signer's
    good = _xades_signed_by(pki, "signer")
    pol = policy(pki, offline=True, at=later, extra_ocsps=(revinfo["before"],))
    sig = only(pki, "offre.xml", good, pol)
    assert sig.subindication is SubIndication.TRY_LATER, sig.errors
