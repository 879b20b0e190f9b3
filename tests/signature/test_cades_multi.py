"""CMS with several SignerInfos (parallel signatures): every signer validated and reported on its own.

The co-signed CMS are built the way a second signer's tool does it: the second SignerInfo (with its own
signature timestamp) appended to the first signature's SignedData, certificates and digest algorithms
merged. Signatures come from pyhanko against the live test PKI (OCSP, CRLs, TSA over loopback).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asn1crypto import cms, core, pem

from bidproc.cli import main as bidproc
from bidproc.signature.cades.validator import ARCHIVE_TS_V2, ARCHIVE_TS_V3, load_signed_data
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SubIndication
from bidproc.signature.validate import validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.cms_craft import parse_tlv, signed_data_node
from tests.signature.signing import asic_s, sign_cms

BID = b"Offre conjointe du groupement: lot 2, prix 48 000 EUR HT"


def _der_set(items: list[bytes]) -> bytes:
    """A SET OF in the given order (asn1crypto would sort it: DER order is not file order)."""
    body = b"".join(items)
    size = len(body)
    if size < 0x80:
        return b"\x31" + bytes([size]) + body
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return b"\x31" + bytes([0x80 | len(octets)]) + octets + body


def co_sign(*signed: bytes, drop_cert_of: int | None = None) -> bytes:
    """One CMS holding every SignerInfo of ``signed`` (same content), in that order; ``drop_cert_of``:
    leave out that signer's own certificate."""
    parts = [cms.ContentInfo.load(s)["content"] for s in signed]
    sd = cms.SignedData.load(parts[0].untag().dump())
    infos = [si.dump() for part in parts for si in part["signer_infos"]]
    dropped = None
    if drop_cert_of is not None:
        sid = cms.SignerInfo.load(infos[drop_cert_of])["sid"].chosen
        dropped = (sid["issuer"].dump(), sid["serial_number"].native)
    certs: dict[bytes, cms.CertificateChoices] = {}
    for part in parts:
        for choice in part["certificates"]:
            cert = choice.chosen
            if dropped is not None and (cert.issuer.dump(), cert.serial_number) == dropped:
                continue
            certs.setdefault(choice.dump(), cms.CertificateChoices.load(choice.dump()))
    algos = {a.dump(): a for part in parts for a in part["digest_algorithms"]}
    sd["certificates"] = cms.CertificateSet(list(certs.values()))
    sd["digest_algorithms"] = cms.DigestAlgorithms([cms.DigestAlgorithm.load(d) for d in algos])
    signer_infos = _der_set(infos)
    sd["signer_infos"] = cms.SignerInfos.load(signer_infos)
    # asn1crypto may re-encode the SET OF SignerInfo in DER order while wrapping it in the ContentInfo
    # (the order then depends on the random ECDSA signature bytes): put the file order back
    tree = parse_tlv(bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()))
    signed_data = signed_data_node(tree)
    assert signed_data.children is not None
    signed_data.children[-1] = parse_tlv(signer_infos)
    return tree.encode()


def policy(pki: TestPKI, **kw: object) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def valid_and_revoked(pki: TestPKI) -> bytes:
    """Detached: a valid signer, then one whose certificate was revoked the day before signing."""
    return co_sign(sign_cms(BID, pki), sign_cms(BID, pki, label="revoked-before"))


def test_detached_two_signers_each_get_their_own_verdict(pki: TestPKI, valid_and_revoked: bytes) -> None:
    sd = load_signed_data(valid_and_revoked)
    assert sd is not None and len(sd["signer_infos"]) == 2
    reports = validate_files({"offre.p7s": valid_and_revoked, "offre-groupement.txt": BID}, policy(pki))
    report = reports["offre.p7s"]
    ok, revoked = report.signatures
    assert (ok.signature_id, revoked.signature_id) == ("0", "1")
    assert (ok.indication, ok.subindication, ok.level) == (Indication.TOTAL_PASSED, None, Level.B_T)
    assert (revoked.indication, revoked.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    assert ok.signer is not None and revoked.signer is not None
    assert ok.signer.common_name != revoked.signer.common_name
    assert revoked.signer.common_name == "Rita Revoked-Before"
    # each signer's own signature timestamp (the revoked signer's is listed, validation stopped before it)
    assert [(t.kind, t.valid) for t in ok.timestamps] == [("signature", True)]
    assert [t.kind for t in revoked.timestamps] == ["signature"]
    assert ok.timestamps[0].time < revoked.timestamps[0].time  # signed one after the other
    assert ok.signed_data == revoked.signed_data == ("offre-groupement.txt",)
    assert ok.french_rule is not None and ok.french_rule.bottom_line
    assert revoked.french_rule is not None
    assert revoked.french_rule.certificate_valid_at_signing_time is RuleOutcome.FAILED
    assert not any(w.startswith("cms.signer_count") for s in report.signatures for w in s.warnings)
    assert not report.bottom_line  # one bad signer fails the file


def test_order_of_signers_does_not_matter(pki: TestPKI) -> None:
    """The failing signer first: the valid one after it is still validated (nothing stops at signer 0)."""
    p7s = co_sign(sign_cms(BID, pki, label="revoked-before"), sign_cms(BID, pki))
    first, second = validate_file("offre.p7s", p7s, policy(pki), {"offre.txt": BID}).signatures
    assert first.subindication is SubIndication.REVOKED
    assert (second.indication, second.level) == (Indication.TOTAL_PASSED, Level.B_T)


def test_enveloping_two_signers_one_untrusted(pki: TestPKI) -> None:
    p7m = co_sign(sign_cms(BID, pki, detached=False), sign_cms(BID, pki, label="rogue-signer", detached=False))
    report = validate_file("offre.txt.p7m", p7m, policy(pki))
    ok, rogue = report.signatures
    assert (ok.indication, ok.level) == (Indication.TOTAL_PASSED, Level.B_T)
    assert (rogue.indication, rogue.subindication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert not report.bottom_line


def test_a_signer_over_other_data_fails_alone(pki: TestPKI) -> None:
    """Pairing by any signer's digest; each signer's digest then checked against that file on its own."""
    p7s = co_sign(sign_cms(BID, pki), sign_cms(BID + b" (version modifiee)", pki, label="revoked-after"))
    ok, other = validate_files({"offre.p7s": p7s, "offre.txt": BID}, policy(pki))["offre.p7s"].signatures
    assert ok.indication is Indication.TOTAL_PASSED
    assert (other.indication, other.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert other.french_rule is not None and "integrity" in other.french_rule.failed


def test_a_signer_without_its_certificate_does_not_hide_the_other(pki: TestPKI) -> None:
    p7m = co_sign(
        sign_cms(BID, pki, detached=False, timestamp=False),
        sign_cms(BID, pki, label="revoked-after", detached=False, timestamp=False),
        drop_cert_of=1,
    )
    ok, nocert = validate_file("x.p7m", p7m, policy(pki)).signatures
    assert (ok.indication, ok.level) == (Indication.TOTAL_PASSED, Level.B_B)
    assert (nocert.indication, nocert.subindication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )
    assert nocert.signature_id == "1"


def test_asic_s_with_a_co_signed_signature(pki: TestPKI, valid_and_revoked: bytes) -> None:
    report = validate_file("offre.asics", asic_s("offre.txt", BID, valid_and_revoked), policy(pki))
    assert [(s.file, s.signature_id, s.indication) for s in report.signatures] == [
        ("offre.asics!/META-INF/signature.p7s", "0", Indication.TOTAL_PASSED),
        ("offre.asics!/META-INF/signature.p7s", "1", Indication.TOTAL_FAILED),
    ]
    assert all(s.signed_data == ("offre.txt",) for s in report.signatures)
    assert not report.bottom_line


def test_cli_json_lists_every_signer(
    pki: TestPKI, valid_and_revoked: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = tmp_path / "root.pem"
    anchor.write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    (tmp_path / "offre.txt").write_bytes(BID)
    (tmp_path / "offre.txt.p7s").write_bytes(valid_and_revoked)
    argv = ["verify", str(tmp_path / "offre.txt.p7s"), "--detached-data", str(tmp_path / "offre.txt")]
    assert bidproc([*argv, "--trust-anchor", str(anchor), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["bottom_line"] is False
    assert [(s["format"], s["indication"], s["subindication"]) for s in doc["signatures"]] == [
        ("CAdES", "TOTAL_PASSED", None),
        ("CAdES", "TOTAL_FAILED", "REVOKED"),
    ]
    assert [s["signer"]["common_name"] for s in doc["signatures"]][1] == "Rita Revoked-Before"


@pytest.mark.parametrize("oid", [ARCHIVE_TS_V3, ARCHIVE_TS_V2])
def test_archive_timestamp_is_never_claimed_unverified(pki: TestPKI, oid: str) -> None:
    """An (unverifiable) archive timestamp attribute on one signer: no B-LTA, a warning on that signer only."""
    plain = sign_cms(BID, pki, detached=False)
    sd = cms.ContentInfo.load(plain)["content"]
    si = sd["signer_infos"][0]
    token = next(iter(si["unsigned_attrs"]))["values"][0]  # the signature timestamp token, as a stand-in
    attr = cms.CMSAttribute({"type": cms.CMSAttributeType(oid), "values": [core.Any.load(token.dump())]})
    si["unsigned_attrs"] = cms.CMSAttributes([*si["unsigned_attrs"], attr])
    lta = bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump(force=True))
    stamped, plain_sig = validate_file("x.p7m", co_sign(lta, plain), policy(pki)).signatures
    assert stamped.level is Level.B_T and plain_sig.level is Level.B_T
    assert any(w.startswith("cades.archive_timestamp_not_validated") for w in stamped.warnings)
    assert not any(w.startswith("cades.archive_timestamp_not_validated") for w in plain_sig.warnings)
