"""Malformed CMS: TOTAL_FAILED with FORMAT_FAILURE (HASH_FAILURE or SIG_CRYPTO_FAILURE where the structure
parses and the digest or signature value is wrong), never INDETERMINATE/GENERIC with a parser exception.

Each file is a real pyhanko signature damaged in exactly one place through a TLV tree that keeps every
other length right (:mod:`tests.signature.cms_craft`), or re-signed for real with chosen signed
attributes, so the damage and nothing else decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.validate import enveloped_content_of, validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.cms_craft import (
    Tlv,
    parse_tlv,
    resign,
    sd_field,
    signed_attrs_of,
    signed_data_node,
    signer_info_node,
)
from tests.signature.signing import asic_s, sign_cms

BID = b"Offre financiere: bordereau des prix unitaires, total 61 300 EUR HT"
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "cades"
FORMAT_FAILURE = (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


@pytest.fixture(scope="module")
def cms_files(pki: TestPKI) -> dict[str, bytes]:
    return {
        "p7m": sign_cms(BID, pki, detached=False),
        "p7s": sign_cms(BID, pki),
        "p7m-bb": sign_cms(BID, pki, detached=False, timestamp=False),
    }


def policy(pki: TestPKI) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,))


def verdict(pki: TestPKI, name: str, data: bytes) -> SignatureReport:
    report = validate_files({name: data, "offre.txt": BID}, policy(pki)).get(name)
    assert report is not None, "a damaged signature must be reported, not taken for an unsigned file"
    assert not report.problems and len(report.signatures) == 1
    return report.signatures[0]


def assert_format_failure(sig: SignatureReport) -> None:
    assert (sig.indication, sig.subindication) == FORMAT_FAILURE, sig.errors
    assert sig.errors and not sig.errors[0].startswith(("ValueError", "TypeError", "KeyError"))
    assert sig.french_rule is not None and not sig.french_rule.bottom_line


def edit(data: bytes, change: Callable[[Tlv], None]) -> bytes:
    tree = parse_tlv(data)
    change(tree)
    return tree.encode()


# --- (a) an enveloped empty content where a detached signature is expected ----------------------------


@pytest.mark.parametrize("source", ["p7s", "p7s-bb"])
def test_detached_signature_with_an_empty_attached_content(
    pki: TestPKI, cms_files: dict[str, bytes], source: str
) -> None:
    signed = cms_files["p7s"] if source == "p7s" else sign_cms(BID, pki, timestamp=False)

    def attach_empty(ci: Tlv) -> None:
        eci = sd_field(signed_data_node(ci), 2)
        assert eci.children is not None and len(eci.children) == 1  # detached: eContentType only
        eci.children.append(Tlv(b"\xa0", children=[Tlv(b"\x04", b"")]))

    damaged = edit(signed, attach_empty)
    assert_format_failure(verdict(pki, "offre.txt.p7s", damaged))
    assert enveloped_content_of(damaged) == b""  # what a naive reader would extract: nothing


# --- (b) constructed/primitive mix-ups -------------------------------------------------------------


def _econtent(ci: Tlv) -> Tlv:
    eci = sd_field(signed_data_node(ci), 2)
    assert eci.children is not None
    return eci.children[1]


def _flip_content_info_tag(ci: Tlv) -> None:
    assert ci.children is not None
    ci.children[1].tag = b"\x80"  # [0] EXPLICIT written primitive


def _flip_econtent_explicit(ci: Tlv) -> None:
    _econtent(ci).tag = b"\x80"


def _flip_econtent_octets(ci: Tlv) -> None:
    econtent = _econtent(ci)
    assert econtent.children is not None
    econtent.children[0].tag = b"\x24"  # OCTET STRING marked constructed, its bytes are no TLVs


def _flip_signed_data_sequence(ci: Tlv) -> None:
    signed_data_node(ci).tag = b"\x10"  # SEQUENCE written primitive


@pytest.mark.parametrize(
    "change",
    [_flip_content_info_tag, _flip_econtent_explicit, _flip_econtent_octets, _flip_signed_data_sequence],
)
def test_constructed_primitive_mix_ups(
    pki: TestPKI, cms_files: dict[str, bytes], change: Callable[[Tlv], None]
) -> None:
    damaged = edit(cms_files["p7m"], change)
    assert_format_failure(verdict(pki, "offre.txt.p7m", damaged))
    assert enveloped_content_of(damaged) is None


def test_ber_constructed_content_is_not_a_mix_up(pki: TestPKI, cms_files: dict[str, bytes]) -> None:
    """The legitimate BER form (indefinite-length constructed OCTET STRING, as streaming signers write it)."""

    def chunked(ci: Tlv) -> None:
        chunks = b"".join(b"\x04" + bytes([len(p)]) + p for p in (BID[:20], BID[20:]))
        eci = sd_field(signed_data_node(ci), 2)
        assert eci.children is not None
        eci.children[1] = Tlv(b"\xa0", contents=b"\x24\x80" + chunks + b"\x00\x00")

    ber = edit(cms_files["p7m"], chunked)
    sig = verdict(pki, "offre.txt.p7m", ber)
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    assert enveloped_content_of(ber) == BID


# --- (c) other structural damage --------------------------------------------------------------------


def _cut_signature_value(ci: Tlv) -> None:
    si = signer_info_node(ci)
    assert si.children is not None
    del si.children[5]  # version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm, *signature*


def _content_type_data(ci: Tlv) -> None:
    assert ci.children is not None
    ci.children[0].contents = bytes.fromhex("2a864886f70d010701")  # id-data over a SignedData


def _content_type_enveloped(ci: Tlv) -> None:
    assert ci.children is not None
    ci.children[0].contents = bytes.fromhex("2a864886f70d010703")  # id-envelopedData


def _econtent_type_signed_data(ci: Tlv) -> None:
    eci = sd_field(signed_data_node(ci), 2)
    assert eci.children is not None
    eci.children[0].contents = bytes.fromhex("2a864886f70d010702")


def _no_signer_infos(ci: Tlv) -> None:
    sd = signed_data_node(ci)
    assert sd.children is not None
    sd.children[-1].children = []


@pytest.mark.parametrize(
    "change",
    [_cut_signature_value, _content_type_data, _content_type_enveloped, _econtent_type_signed_data, _no_signer_infos],
)
def test_structural_damage(pki: TestPKI, cms_files: dict[str, bytes], change: Callable[[Tlv], None]) -> None:
    assert_format_failure(verdict(pki, "offre.txt.p7m", edit(cms_files["p7m"], change)))


@pytest.mark.parametrize("cut", [1, 40, 400])
def test_truncated_files(pki: TestPKI, cms_files: dict[str, bytes], cut: int) -> None:
    for kind in ("p7m", "p7s"):
        assert_format_failure(verdict(pki, f"offre.txt.{kind}", cms_files[kind][:-cut]))


def _attr(name: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": [value]})


def test_signed_attributes_without_a_unique_message_digest(pki: TestPKI, cms_files: dict[str, bytes]) -> None:
    """Re-signed for real, so only the missing or doubled attribute is wrong (RFC 5652 §5.3)."""
    attrs = signed_attrs_of(cms_files["p7m-bb"])
    same = resign(cms_files["p7m-bb"], pki, "signer", cms.CMSAttributes(attrs))
    assert verdict(pki, "offre.txt.p7m", same).indication is Indication.TOTAL_PASSED  # the re-signing is sound
    without = [a for a in attrs if a["type"].native != "message_digest"]
    doubled = [*attrs, _attr("message_digest", hashlib.sha256(BID).digest())]
    no_type = [a for a in attrs if a["type"].native != "content_type"]
    for variant in (without, doubled, no_type):
        damaged = resign(cms_files["p7m-bb"], pki, "signer", cms.CMSAttributes(variant))
        assert_format_failure(verdict(pki, "offre.txt.p7m", damaged))


def test_parsable_but_wrong_digest_or_signature(pki: TestPKI, cms_files: dict[str, bytes]) -> None:
    attrs = [
        a if a["type"].native != "message_digest" else _attr("message_digest", hashlib.sha256(b"autre offre").digest())
        for a in signed_attrs_of(cms_files["p7m-bb"])
    ]
    sig = verdict(pki, "offre.txt.p7m", resign(cms_files["p7m-bb"], pki, "signer", cms.CMSAttributes(attrs)))
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)

    def flip_signature(ci: Tlv) -> None:
        value = signer_info_node(ci).children[5]  # type: ignore[index]
        value.contents = value.contents[:-1] + bytes([value.contents[-1] ^ 1])

    sig = verdict(pki, "offre.txt.p7m", edit(cms_files["p7m"], flip_signature))
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE)


def test_damaged_signature_inside_an_asic_container(pki: TestPKI, cms_files: dict[str, bytes]) -> None:
    report = validate_file("offre.asics", asic_s("offre.txt", BID, cms_files["p7s"][:-40]), policy(pki))
    assert [(s.indication, s.subindication) for s in report.signatures] == [FORMAT_FAILURE]
    assert not report.bottom_line


def test_what_is_not_cms_stays_unsigned(pki: TestPKI) -> None:
    """DER that does not claim to be a SignedData (a certificate, an OCSP response) is not a signature."""
    for der in (pki.der("signer"), b"\x30\x03\x02\x01\x05", b"\x30\x80garbage"):
        assert validate_files({"x.der": der}, policy(pki)) == {}


def test_corpus_cms_without_signing_certificate_unchanged(pki: TestPKI) -> None:
    data = (CORPUS / "cms-no-sign-cert.p7m").read_bytes()
    sig = validate_file("cms-no-sign-cert.p7m", data, policy(pki)).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND)


def test_cli_reports_the_format_failure(
    pki: TestPKI, cms_files: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from asn1crypto import pem

    from bidproc.cli import main as bidproc

    anchor = tmp_path / "root.pem"
    anchor.write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    (tmp_path / "offre.txt.p7m").write_bytes(cms_files["p7m"][:-40])
    argv = ["verify", str(tmp_path / "offre.txt.p7m"), "--trust-anchor", str(anchor), "--format", "json"]
    assert bidproc(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["bottom_line"] is False
    assert [(s["format"], s["indication"], s["subindication"]) for s in doc["signatures"]] == [
        ("CAdES", "TOTAL_FAILED", "FORMAT_FAILURE")
    ]


def test_exception_mapping_keeps_bugs_generic() -> None:
    """The typed structural error is a FORMAT_FAILURE; a bare parser-looking ValueError is not (a bug)."""
    from bidproc.signature.outcome import MalformedSignature, indication_for_exception

    assert indication_for_exception(MalformedSignature("damaged CMS structure: x"))[:2] == FORMAT_FAILURE
    assert indication_for_exception(ValueError("Error parsing asn1crypto.cms.SignedData"))[:2] == (
        Indication.INDETERMINATE,
        SubIndication.GENERIC,
    )
