"""CAdES baseline B-LT (EN 319 122-1): validation data in SignedData.crls validates offline.

The files are pyhanko B-T signatures (detached .p7s, enveloping .p7m) against the live test PKI, with
OCSP responses (RFC 5940 id-ri-ocsp-response) and CRLs fetched from it and added to SignedData.crls
(:mod:`tests.signature.cms_craft`). The test PKI: the signer is issued by an intermediate CA that
answers OCSP and publishes a CRL; the intermediate CA and the TSA are covered by the root's CRL only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import pem

from bidproc.cli import main as bidproc
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, SignatureReport, SubIndication
from bidproc.signature.validate import validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.cms_craft import add_signed_data_revinfo, add_token_crls
from tests.signature.signing import fetch_crl, fetch_ocsp, sign_cms

BID = b"Memoire technique: lot 3, prix 27 500 EUR HT, delai 6 semaines"


@pytest.fixture(scope="module")
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def data(pki: TestPKI, now: datetime) -> dict[str, bytes]:
    """Revocation data as of ``now`` and the B-T signatures it is added to."""
    return {
        "ocsp": fetch_ocsp(pki, "signer", now),
        "ocsp-other": fetch_ocsp(pki, "revoked-after", now),  # a good answer, for another certificate
        "ocsp-revoked": fetch_ocsp(pki, "revoked-before", now),
        "crl-root": fetch_crl(pki, "root", now),
        "crl-interm": fetch_crl(pki, "interm", now),
        "p7s": sign_cms(BID, pki),
        "p7m": sign_cms(BID, pki, detached=False),
        "p7m-revoked": sign_cms(BID, pki, label="revoked-before", detached=False),
    }


def check(pki: TestPKI, signature: bytes, detached: bool, **kw: object) -> SignatureReport:
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), **kw)  # type: ignore[arg-type]
    if detached:
        report = validate_files({"offre.p7s": signature, "memoire.txt": BID}, policy)["offre.p7s"]
    else:
        report = validate_file("memoire.txt.p7m", signature, policy)
    assert not report.problems and len(report.signatures) == 1
    return report.signatures[0]


def assert_b_lt(sig: SignatureReport) -> None:
    assert (sig.indication, sig.subindication, sig.level) == (Indication.TOTAL_PASSED, None, Level.B_LT), sig.errors
    stamp = next(t for t in sig.timestamps if t.kind == "signature")
    assert stamp.valid and stamp.detail is None and stamp.tsa is not None
    assert sig.best_signature_time == stamp.time
    assert not any(w.startswith("signature.validation_data_incomplete") for w in sig.warnings)


@pytest.mark.parametrize("kind", ["p7s", "p7m"])
@pytest.mark.parametrize("basic", [False, True], ids=["OCSPResponse", "BasicOCSPResponse"])
def test_ocsp_and_crl_in_signed_data_validate_offline(
    pki: TestPKI, data: dict[str, bytes], kind: str, basic: bool
) -> None:
    bt = check(pki, data[kind], kind == "p7s", offline=True)
    assert (bt.indication, bt.subindication, bt.level) == (Indication.INDETERMINATE, SubIndication.TRY_LATER, Level.B_T)
    lt = add_signed_data_revinfo(data[kind], [data["ocsp"]], [data["crl-root"]], basic=basic)
    assert_b_lt(check(pki, lt, kind == "p7s", offline=True))
    assert_b_lt(check(pki, lt, kind == "p7s"))  # online too: fetched data only adds to it


@pytest.mark.parametrize("kind", ["p7s", "p7m"])
def test_crls_only(pki: TestPKI, data: dict[str, bytes], kind: str) -> None:
    lt = add_signed_data_revinfo(data[kind], crls=[data["crl-interm"], data["crl-root"]])
    assert_b_lt(check(pki, lt, kind == "p7s", offline=True))


def test_tsa_validation_data_in_the_timestamp_token(pki: TestPKI, data: dict[str, bytes]) -> None:
    """The root CRL (issuing CA and TSA) inside the timestamp token, the signer's OCSP in the signature."""
    lt = add_token_crls(add_signed_data_revinfo(data["p7m"], [data["ocsp"]]), [data["crl-root"]])
    assert_b_lt(check(pki, lt, False, offline=True))


def test_ocsp_only_is_short_of_the_chain(pki: TestPKI, data: dict[str, bytes]) -> None:
    """The signer's OCSP response alone: the issuing CA's and the TSA's status are not in the file."""
    partial = add_signed_data_revinfo(data["p7m"], [data["ocsp"]])
    offline = check(pki, partial, False, offline=True)
    assert (offline.indication, offline.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    online = check(pki, partial, False)
    assert (online.indication, online.level) == (Indication.TOTAL_PASSED, Level.B_T)
    assert any(w.startswith("signature.validation_data_incomplete") for w in online.warnings)


@pytest.mark.parametrize("kind", ["p7s", "p7m"])
def test_revocation_data_for_another_certificate_is_not_b_lt(pki: TestPKI, data: dict[str, bytes], kind: str) -> None:
    wrong = add_signed_data_revinfo(data[kind], [data["ocsp-other"]], [data["crl-root"]])
    offline = check(pki, wrong, kind == "p7s", offline=True)
    assert (offline.indication, offline.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)
    assert offline.level is not Level.B_LT
    online = check(pki, wrong, kind == "p7s")
    assert (online.indication, online.level) == (Indication.TOTAL_PASSED, Level.B_T)
    assert any(w.startswith("signature.validation_data_incomplete") for w in online.warnings)


def test_embedded_ocsp_of_a_revoked_signer(pki: TestPKI, data: dict[str, bytes]) -> None:
    """Revoked the day before signing (the timestamp proves the signature came after): REVOKED, offline."""
    lt = add_signed_data_revinfo(data["p7m-revoked"], [data["ocsp-revoked"]], [data["crl-root"]])
    sig = check(pki, lt, False, offline=True)
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    # without the CAs' data, the signer's own OCSP answer still decides (not TRY_LATER)
    alone = check(pki, add_signed_data_revinfo(data["p7m-revoked"], [data["ocsp-revoked"]]), False, offline=True)
    assert (alone.indication, alone.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)


def test_unparseable_entries_are_skipped_not_trusted(pki: TestPKI, data: dict[str, bytes]) -> None:
    """An OCSP entry that is not an OCSP response next to real data: ignored; alone: nothing validates."""
    from asn1crypto import cms, core

    def with_junk(signed: bytes) -> bytes:
        info = cms.ContentInfo.load(signed)
        sd = info["content"]
        body = core.ObjectIdentifier("1.3.6.1.5.5.7.16.2").dump() + core.OctetString(b"not an OCSP response").dump()
        junk = cms.RevocationInfoChoice.load(b"\xa1" + bytes([len(body)]) + body)
        current = [] if isinstance(sd["crls"], core.Void) else list(sd["crls"])
        sd["crls"] = cms.RevocationInfoChoices([*current, junk])
        return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump())

    assert_b_lt(check(pki, with_junk(add_signed_data_revinfo(data["p7m"], [data["ocsp"]], [data["crl-root"]])), False))
    alone = check(pki, with_junk(data["p7m"]), False, offline=True)
    assert (alone.indication, alone.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


def test_cli_verify_offline(
    pki: TestPKI, data: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a user runs: ``bidproc verify x.p7m --offline`` on a B-LT file."""
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    (tmp_path / "memoire.txt.p7m").write_bytes(add_signed_data_revinfo(data["p7m"], [data["ocsp"]], [data["crl-root"]]))
    argv = ["verify", str(tmp_path / "memoire.txt.p7m"), "--trust-anchor", str(anchor), "--offline"]
    assert bidproc([*argv, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sig = doc["signatures"][0]
    assert (sig["indication"], sig["subindication"], sig["level"]) == ("TOTAL_PASSED", None, "B-LT")
    assert [(t["kind"], t["valid"]) for t in sig["timestamps"]] == [("signature", True)]
