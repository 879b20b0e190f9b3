"""Hostile XML and the third-party corpus: refused or judged, never an exception, never expanded."""

from __future__ import annotations

import time

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.corpus import corpus_dir

OFFLINE = ValidationPolicy(offline=True)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="s"><ds:SignedInfo>&lol9;</ds:SignedInfo></ds:Signature>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<r><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">&x;</ds:Signature></r>
"""


def assert_format_failure(data: bytes, policy: ValidationPolicy = OFFLINE) -> str:
    started = time.monotonic()
    reports = validate_xades("bomb.xml", data, policy, {})
    assert time.monotonic() - started < 2  # refused, not expanded
    assert len(reports) == 1
    report = reports[0]
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.french_rule is not None and "format" in report.french_rule.failed
    return report.errors[0]


def test_entity_bomb_refused_without_expansion() -> None:
    assert "DOCTYPE" in assert_format_failure(BILLION_LAUGHS)


def test_external_entity_refused() -> None:
    reason = assert_format_failure(XXE)
    assert "DOCTYPE" in reason and "root:" not in reason


def test_doctype_in_utf16_refused() -> None:
    assert "DOCTYPE" in assert_format_failure(XXE.replace(b'<?xml version="1.0"?>\n', b"").decode().encode("utf-16"))


def test_size_and_depth_bounded() -> None:
    deep = b"<a>" * 50 + b"<ds:Signature xmlns:ds='http://www.w3.org/2000/09/xmldsig#'/>" + b"</a>" * 50
    assert "deeper" in assert_format_failure(deep, ValidationPolicy(offline=True, max_xml_depth=20))
    assert "limit" in assert_format_failure(deep, ValidationPolicy(offline=True, max_xml_bytes=100))


def test_malformed_xml_is_a_report_not_an_exception() -> None:
    assert "well-formed" in assert_format_failure(b"<ds:Signature xmlns:ds='http://www.w3.org/2000/09/xmldsig#'>")


def test_xml_without_signature_has_no_report() -> None:
    assert validate_xades("dume.xml", b"<dume><lot>1</lot></dume>", OFFLINE, {}) == []


def test_garbage_signature_is_format_failure() -> None:
    data = b"<ds:Signature xmlns:ds='http://www.w3.org/2000/09/xmldsig#' Id='s'><ds:SignedInfo/></ds:Signature>"
    assert_format_failure(data)


def test_corpus_signature_wrapping_two_same_ids() -> None:
    data = (corpus_dir("xades") / "XSW-enveloped-fake-content-two-same-id.xml").read_bytes()
    reports = validate_xades("XSW-enveloped-fake-content-two-same-id.xml", data, OFFLINE, {})
    assert len(reports) == 1
    assert (reports[0].indication, reports[0].subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert "TLISK-102" in reports[0].errors[0]


def test_corpus_original_parses_and_its_signature_is_found() -> None:
    data = (corpus_dir("xades") / "xsw-original.xml").read_bytes()
    reports = validate_xades("xsw-original.xml", data, OFFLINE, {})
    assert len(reports) == 1
    report = reports[0]
    assert report.signature_id == "Signature-865906529"
    # the signature itself verifies (integrity), but nothing chains without a trust anchor
    assert (report.indication, report.subindication) == (
        Indication.INDETERMINATE,
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
    )
    assert any(s.startswith("element:#TLISK-102 <TrustServiceStatusList>") for s in report.signed_data)
    assert report.signer is not None and report.signer.organisation == "NATIONAL SECURITY AUTHORITY"
