"""XAdES B-LT and B-LTA: embedded validation data used online and offline, archive timestamps verified."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, SignatureReport, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.ltv import (
    add_archive_timestamp,
    add_timestamp_validation_data,
    add_validation_data,
    fetch_crl,
    fetch_ocsp,
)
from tests.xades.pki import Identity, LoopbackPKI
from tests.xades.signing import NS, add_signature_timestamp, sign_detached, sign_enveloped, sign_enveloping

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% memoire technique\n%%EOF\n"
FILES = {"offre.pdf": PDF}


def only(reports: list[SignatureReport]) -> SignatureReport:
    assert len(reports) == 1, reports
    return reports[0]


def b_lt(pki: LoopbackPKI, who: Identity, *, crl: bool = True, ocsp: bool = False, tsa: str = "/tsa") -> etree._Element:
    """XAdES-T, then the chain and the revocation data fetched from the loopback PKI (a real B-LT)."""
    signature = sign_detached(FILES, who)
    add_signature_timestamp(signature, f"{pki.base}{tsa}")
    add_validation_data(
        signature,
        [pki.root.cert, pki.ocsp_tsa.cert if tsa == "/tsa-ocsp" else pki.tsa.cert],
        crls=[fetch_crl(pki)] if crl else [],
        ocsps=[fetch_ocsp(pki, who), fetch_ocsp(pki, pki.ocsp_tsa)] if ocsp else [],  # the TSA's status too
    )
    return signature


def serialise(signature: etree._Element) -> bytes:
    return bytes(etree.tostring(signature, xml_declaration=True, encoding="UTF-8"))


class NetworkBlock:
    """Once ``on()``, any socket connection attempt is recorded and refused: offline must mean no network."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.attempts: list[object] = []

    def on(self) -> None:
        def refuse(_socket: socket.socket, address: object) -> None:
            self.attempts.append(address)
            raise OSError("network blocked by the test")

        self.monkeypatch.setattr(socket.socket, "connect", refuse)
        self.monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> NetworkBlock:
    return NetworkBlock(monkeypatch)


@pytest.fixture(scope="module")
def offline(policy: ValidationPolicy) -> ValidationPolicy:
    return dataclasses.replace(policy, offline=True)


def test_b_lt_with_embedded_crl_validates_offline_without_network(
    pki: LoopbackPKI, offline: ValidationPolicy, network: NetworkBlock
) -> None:
    # the signer's CRL distribution point is a dead port: only the embedded CRL can answer
    data = serialise(b_lt(pki, pki.unreachable))
    pki.requests.clear()
    network.on()
    report = only(validate_xades("offre.xml", data, offline, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT
    assert report.to_json()["level"] == "B-LT"
    assert not any(w.startswith("signature.offline_no_revocation") for w in report.warnings), report.warnings
    assert network.attempts == [] and pki.requests == []


def test_b_lt_with_embedded_crl_online(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    pki.requests.clear()
    report = only(validate_xades("offre.xml", serialise(b_lt(pki, pki.signer)), policy, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT
    assert "GET /root.crl" in pki.requests  # online, the CRL is fetched as well
    # the CRL server of this signer is down: online, the embedded CRL still answers (no TRY_LATER)
    report = only(validate_xades("offre.xml", serialise(b_lt(pki, pki.unreachable)), policy, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT


def test_b_lt_ocsp(pki: LoopbackPKI, policy: ValidationPolicy, offline: ValidationPolicy) -> None:
    data = serialise(b_lt(pki, pki.ocsp_signer, crl=True, ocsp=True))
    # OCSP only, for the signer (whose responder is down) and the TSA: no CRL anywhere in the signature
    dead = serialise(b_lt(pki, pki.ocsp_unreachable, crl=False, ocsp=True, tsa="/tsa-ocsp"))
    for subject, each in ((data, policy), (data, offline), (dead, offline)):
        report = only(validate_xades("offre.xml", subject, each, FILES))
        assert report.indication is Indication.TOTAL_PASSED, report.errors
        assert report.level is Level.B_LT, report.warnings


def test_b_lt_with_timestamp_validation_data(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    # the TSA's OCSP response sits in xadesv141:TimeStampValidationData, the signer's in RevocationValues
    signature = sign_detached(FILES, pki.ocsp_unreachable)
    add_signature_timestamp(signature, f"{pki.base}/tsa-ocsp")
    add_timestamp_validation_data(signature, [fetch_ocsp(pki, pki.ocsp_tsa)])
    add_validation_data(signature, [pki.root.cert, pki.ocsp_tsa.cert], ocsps=[fetch_ocsp(pki, pki.ocsp_unreachable)])
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT, report.warnings
    # without it, the TSA's status is unknown: never B-LT. (pyhanko-certvalidator even refuses the timestamp
    # offline, because the signer's OCSP response, same issuer, does not match the TSA: INDETERMINATE, not a pass.)
    tsvd = signature.find(".//{http://uri.etsi.org/01903/v1.4.1#}TimeStampValidationData")
    assert tsvd is not None
    tsvd.getparent().remove(tsvd)
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level not in (Level.B_LT, Level.B_LTA)
    assert report.indication is not Indication.TOTAL_PASSED or any(
        w.startswith("xades.validation_data_incomplete") for w in report.warnings
    )


def test_embedded_crl_is_really_used_offline(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    # Offline, the embedded CRL is what catches the revoked signer.
    report = only(validate_xades("offre.xml", serialise(b_lt(pki, pki.revoked)), offline, FILES))
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)
    assert report.level is Level.B_LT
    # with a proof of existence before the revocation, the same embedded CRL lets it pass
    report = only(validate_xades("offre.xml", serialise(b_lt(pki, pki.revoked, tsa="/tsa-past")), offline, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(w.startswith("certificate.revoked_after_signing") for w in report.warnings)


def test_incomplete_validation_data_is_not_b_lt(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    # certificates but no revocation data: the chain cannot be validated from the signature alone
    data = serialise(b_lt(pki, pki.unreachable, crl=False))
    report = only(validate_xades("offre.xml", data, offline, FILES))
    assert report.level is Level.B_T
    assert any(w.startswith("xades.validation_data_incomplete") for w in report.warnings), report.warnings
    assert any(w.startswith("signature.offline_no_revocation") for w in report.warnings)
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.TRY_LATER)


def b_lta(pki: LoopbackPKI, tsa: str = "/tsa") -> etree._Element:
    signature = b_lt(pki, pki.signer)
    add_archive_timestamp(signature, f"{pki.base}{tsa}", FILES)
    return signature


def test_b_lta_online_and_offline(pki: LoopbackPKI, policy: ValidationPolicy, offline: ValidationPolicy) -> None:
    data = serialise(b_lta(pki))
    for each in (policy, offline):
        report = only(validate_xades("offre.xml", data, each, FILES))
        assert report.indication is Indication.TOTAL_PASSED, report.errors
        assert report.level is Level.B_LTA, report.warnings
        archive = [t for t in report.timestamps if t.kind == "archive"]
        assert len(archive) == 1 and archive[0].valid and archive[0].tsa is not None


def lt_properties(pki: LoopbackPKI, signature: etree._Element) -> None:
    add_signature_timestamp(signature, f"{pki.base}/tsa")
    add_validation_data(signature, [pki.root.cert, pki.tsa.cert], crls=[fetch_crl(pki)])
    add_archive_timestamp(signature, f"{pki.base}/tsa", {})


def test_b_lta_enveloped_and_enveloping(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    # enveloped: the document reference's transforms end in C14N; enveloping: the signed content is a ds:Object,
    # which the archive timestamp covers twice (as referenced data and as a ds:Object)
    document = sign_enveloped(etree.fromstring(b"<bid><lot n='1'>42 000 EUR</lot></bid>"), pki.signer)
    signature = document.find("ds:Signature", NS)
    assert signature is not None
    lt_properties(pki, signature)
    enveloping = sign_enveloping(etree.fromstring(b"<bid><lot n='2'>17 000 EUR</lot></bid>"), pki.signer)
    lt_properties(pki, enveloping)
    for root in (document, enveloping):
        report = only(validate_xades("bid.xml", serialise(root), offline, {}))
        assert report.indication is Indication.TOTAL_PASSED, report.errors
        assert report.level is Level.B_LTA, report.warnings


def test_archive_timestamp_over_changed_content_object_is_not_b_lta(
    pki: LoopbackPKI, offline: ValidationPolicy
) -> None:
    # an unsigned, empty ds:Object added after archiving: the signature still verifies, the archive timestamp
    # does not. (An added Object with content is unsigned content inside the signature: SIGNED_DATA_NOT_FOUND,
    # see test_manifest.py.)
    enveloping = sign_enveloping(etree.fromstring(b"<bid><lot n='2'>17 000 EUR</lot></bid>"), pki.signer)
    lt_properties(pki, enveloping)
    etree.SubElement(enveloping, f"{{{NS['ds']}}}Object", Id="added-later")
    report = only(validate_xades("bid.xml", serialise(enveloping), offline, {}))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT
    assert any(w.startswith("xades.archive_timestamp_invalid") for w in report.warnings), report.warnings


def test_tampered_archive_timestamp_is_not_b_lta(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    signature = b_lta(pki)
    # a property the archive timestamp covers, changed after stamping (the signature itself still verifies)
    stamp = signature.find(".//xades:SignatureTimeStamp", NS)
    assert stamp is not None
    stamp.set("Id", "changed-after-archiving")
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level is Level.B_LT
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    warning = next(w for w in report.warnings if w.startswith("xades.archive_timestamp_invalid"))
    assert "imprint does not match" in warning
    assert [t.valid for t in report.timestamps if t.kind == "archive"] == [False]

    # a genuine token from the same TSA, moved into the ArchiveTimeStamp: its imprint is the SignatureValue's
    signature = b_lta(pki)
    tokens = signature.findall(".//xades:EncapsulatedTimeStamp", NS)
    assert len(tokens) == 2
    tokens[1].text = tokens[0].text
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level is Level.B_LT
    assert any("imprint does not match" in w for w in report.warnings if w.startswith("xades.archive_timestamp"))

    # garbage instead of a token
    tokens[1].text = "AAAA"
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level is Level.B_LT
    assert any("unreadable timestamp token" in w for w in report.warnings), report.warnings


def test_archive_timestamp_on_a_b_t_is_not_b_lta(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    signature = sign_detached(FILES, pki.signer)
    add_signature_timestamp(signature, f"{pki.base}/tsa")
    add_archive_timestamp(signature, f"{pki.base}/tsa", FILES)
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level is Level.B_T
    assert any("not B-LT" in w for w in report.warnings if w.startswith("xades.archive_timestamp_invalid"))


def test_archive_timestamp_from_an_untrusted_tsa_is_not_b_lta(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    report = only(validate_xades("offre.xml", serialise(b_lta(pki, "/tsa-untrusted")), offline, FILES))
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert report.level is Level.B_LT
    warning = next(w for w in report.warnings if w.startswith("xades.archive_timestamp_invalid"))
    assert "does not chain to a trust anchor" in warning


def test_xades_132_archive_timestamp_is_not_claimed(pki: LoopbackPKI, offline: ValidationPolicy) -> None:
    # the pre-EN form (xades:ArchiveTimeStamp, TS 101 903 v1.3.2) has another input: never counted as B-LTA
    signature = b_lta(pki)
    stamp = signature.find(".//{http://uri.etsi.org/01903/v1.4.1#}ArchiveTimeStamp")
    assert stamp is not None
    stamp.tag = f"{{{NS['xades']}}}ArchiveTimeStamp"
    report = only(validate_xades("offre.xml", serialise(signature), offline, FILES))
    assert report.level is Level.B_LT
    assert any(w.startswith("xades.archive_timestamp_invalid") for w in report.warnings), report.warnings
