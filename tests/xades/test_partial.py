"""Signature wrapping by omission: a valid signature over part of a file never makes the file signed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication
from bidproc.signature.validate import validate_file
from tests.xades.pki import PKIServer
from tests.xades.signing import DS, reference, sign_enveloping


@pytest.fixture(scope="module")
def server() -> Iterator[PKIServer]:
    srv = PKIServer()
    yield srv
    srv.close()


def test_enveloping_signature_wrapped_in_a_fake_document(server: PKIServer) -> None:
    pki = server.pki
    policy = ValidationPolicy(trust_anchors=(pki.root.der,))
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    assert validate_file("offre.xml", etree.tostring(signature), policy).bottom_line
    wrapped = etree.fromstring(b"<Offre><Prix>1 EUR</Prix></Offre>")
    wrapped.append(signature)
    report = validate_file("offre.xml", etree.tostring(wrapped), policy)
    assert report.signatures[0].indication is Indication.TOTAL_PASSED  # over what it signs...
    assert not report.bottom_line  # ...but not over the price a reader sees
    assert report.problems == ("xml.partially_signed: not covered by this signature: Prix",)


def test_enveloped_signature_over_one_element_with_unsigned_siblings(server: PKIServer) -> None:
    pki = server.pki
    doc = etree.fromstring(b'<Offre><Lot Id="lot1"><Prix>100000 EUR</Prix></Lot></Offre>')
    signer = XAdESSigner(method=SignatureConstructionMethod.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256)
    signed = signer.sign(doc, key=pki.signer.key, cert=[pki.signer.cert], reference_uri=["#lot1"])
    signed.insert(0, etree.fromstring(b"<Conditions>Prix reel: 1 EUR</Conditions>"))
    report = validate_file("offre.xml", etree.tostring(signed), ValidationPolicy(trust_anchors=(pki.root.der,)))
    assert not report.bottom_line
    assert any(w.startswith("xml.partially_signed") and "Conditions" in w for w in report.signatures[0].warnings)


def test_manifest_entries_count_as_coverage_of_the_document(server: PKIServer) -> None:
    # An enveloping signature over a manifest, placed in the bid document: what the verified manifest entries
    # designate is signed, the rest of the document is reported as not covered.
    pki = server.pki
    policy = ValidationPolicy(trust_anchors=(pki.root.der,))
    for entries, uncovered in ((("lot1",), "Conditions"), (("lot1", "cond"), None)):
        document = etree.fromstring(
            b'<Offre><Lot Id="lot1"><Prix>100000 EUR</Prix></Lot><Conditions Id="cond">30 jours</Conditions></Offre>'
        )
        manifest = etree.Element(f"{{{DS}}}Manifest", Id="m", nsmap={"ds": DS})
        for target in entries:
            reference(manifest, f"#{target}", document.find(f".//*[@Id='{target}']"))
        document.append(sign_enveloping(manifest, pki.signer))
        report = validate_file("offre.xml", etree.tostring(document), policy)
        assert report.signatures[0].indication is Indication.TOTAL_PASSED, report.signatures[0].errors
        if uncovered is None:
            assert report.bottom_line and report.problems == ()
        else:
            assert not report.bottom_line
            assert report.problems == (f"xml.partially_signed: not covered by this signature: {uncovered}",)
