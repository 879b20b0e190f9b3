"""Canonical XML 1.1 is not 1.0 (issue 8, class 9): xml:id is not inherited, xml:base is fixed up.

The expected bytes below were produced by libxml2 2.9.14 (``xmlC14NDocDumpMemory``, modes XML_C14N_1_0 and
XML_C14N_1_1, over the XML-DSig node set of the element with Id ``t``/``lot1``): an implementation
independent of ours. Santuario (EU DSS) inherits the same ``xml:*`` attributes in subtree mode.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree
from signxml import CanonicalizationMethod, SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.c14n import C14N_10, C14N_11, canonicalise
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import LoopbackPKI
from tests.xades.signing import NS, resign

# (document, expected C14N 1.0, expected C14N 1.1) of the element with Id="t"
KNOWN_ANSWERS = [
    (
        b'<a xml:base="d1/d2/"><b xml:base="../x/"><c Id="t">z</c></b></a>',
        b'<c Id="t" xml:base="../x/">z</c>',
        b'<c Id="t" xml:base="d1/x/">z</c>',
    ),
    (
        b'<a xml:base="http://e.org/p/q/r"><b xml:base="../s/"><c Id="t" xml:base="./u">z</c></b></a>',
        b'<c Id="t" xml:base="./u">z</c>',
        b'<c Id="t" xml:base="http://e.org/p/s/u">z</c>',
    ),
    (
        b'<a xml:base="http://e.org/a/"><b xml:id="mid"><c Id="t" xml:lang="en">z</c></b></a>',
        b'<c Id="t" xml:base="http://e.org/a/" xml:id="mid" xml:lang="en">z</c>',
        b'<c Id="t" xml:base="http://e.org/a/" xml:lang="en">z</c>',
    ),
    (
        b'<a xml:lang="fr"><b xml:lang=""><c Id="t">z</c></b></a>',
        b'<c Id="t" xml:lang="">z</c>',
        b'<c Id="t" xml:lang="">z</c>',
    ),
    (
        b'<a xmlns:p="urn:p" xml:base="/abs/path/"><b xml:base="rel">'
        b'<c Id="t"><p:d xml:base="inner/">k</p:d></c></b></a>',
        b'<c xmlns:p="urn:p" Id="t" xml:base="rel"><p:d xml:base="inner/">k</p:d></c>',
        b'<c xmlns:p="urn:p" Id="t" xml:base="/abs/path/rel"><p:d xml:base="inner/">k</p:d></c>',
    ),
]


@pytest.mark.parametrize(("document", "c14n_10", "c14n_11"), KNOWN_ANSWERS)
def test_canonical_forms_match_libxml2(document: bytes, c14n_10: bytes, c14n_11: bytes) -> None:
    element = etree.fromstring(document).xpath("//*[@Id='t']")[0]
    assert canonicalise(element, C14N_10) == c14n_10
    assert canonicalise(element, C14N_11) == c14n_11
    assert canonicalise(element, C14N_10 + "#WithComments") == c14n_10
    # exclusive C14N imports no xml:* attribute from the ancestors
    assert b"xml:id" not in canonicalise(element, "http://www.w3.org/2001/10/xml-exc-c14n#")


DOSSIER = (
    b'<Dossier><Offre xmlns="urn:offre" xml:id="offre" xml:lang="fr" xml:base="http://acheteur.example/dossiers/">'
    b'<Lots xml:base="lots/" xml:space="preserve"><Lot Id="lot1" xml:base="lot1.xml"><Prix>100000 EUR</Prix></Lot>'
    b"</Lots></Offre></Dossier>"
)
LOT_C14N_10 = (
    b'<Lot xmlns="urn:offre" Id="lot1" xml:base="lot1.xml" xml:id="offre" xml:lang="fr" xml:space="preserve">'
    b"<Prix>100000 EUR</Prix></Lot>"
)
LOT_C14N_11 = (
    b'<Lot xmlns="urn:offre" Id="lot1" xml:base="http://acheteur.example/dossiers/lots/lot1.xml" xml:lang="fr" '
    b'xml:space="preserve"><Prix>100000 EUR</Prix></Lot>'
)
# what signxml computes (lxml's C14N of the element alone: no xml:* attribute inherited): neither 1.0 nor 1.1
LOT_NOTHING_INHERITED = b'<Lot xmlns="urn:offre" Id="lot1" xml:base="lot1.xml"><Prix>100000 EUR</Prix></Lot>'


def signed_dossier(pki: LoopbackPKI, method: CanonicalizationMethod, lot_bytes: bytes) -> bytes:
    """An enveloped XAdES over #lot1 and #offre with ``method``; #lot1's digest is that of ``lot_bytes``.

    The signature sits in <Dossier>, which carries no xml:* attribute, so its SignedInfo canonicalises the
    same in every implementation; only the #lot1 reference depends on what C14N inherits.
    """
    signer = XAdESSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        c14n_algorithm=method,
    )
    document = etree.fromstring(DOSSIER)
    signed = signer.sign(document, key=pki.signer.key, cert=[pki.signer.cert], reference_uri=["#lot1", "#offre"])
    signature = signed.find("ds:Signature", NS)
    lot = signature.find("ds:SignedInfo/ds:Reference[@URI='#lot1']", NS)
    assert [t.get("Algorithm") for t in lot.findall("ds:Transforms/ds:Transform", NS)][-1] == method.value
    lot.find("ds:DigestValue", NS).text = base64.b64encode(hashlib.sha256(lot_bytes).digest()).decode()
    resign(signature, pki.signer)
    return bytes(etree.tostring(signed))


C11 = CanonicalizationMethod.CANONICAL_XML_1_1
C10 = CanonicalizationMethod.CANONICAL_XML_1_0


@pytest.mark.parametrize(
    ("method", "lot_bytes", "passes"),
    [
        (C11, LOT_C14N_11, True),  # a correct C14N 1.1 signature
        (C11, LOT_C14N_10, False),  # computed with 1.0, labelled 1.1
        (C11, LOT_NOTHING_INHERITED, False),  # computed as signxml/lxml do, labelled 1.1
        (C10, LOT_C14N_10, True),  # a correct C14N 1.0 signature
        (C10, LOT_C14N_11, False),  # computed with 1.1, labelled 1.0
    ],
    ids=["1.1-ok", "1.0-as-1.1", "none-as-1.1", "1.0-ok", "1.1-as-1.0"],
)
def test_reference_canonicalised_with_the_method_it_names(
    pki: LoopbackPKI, policy: ValidationPolicy, method: CanonicalizationMethod, lot_bytes: bytes, passes: bool
) -> None:
    reports = validate_xades("dossier.xml", signed_dossier(pki, method, lot_bytes), policy, {})
    assert len(reports) == 1
    report = reports[0]
    if passes:
        assert report.indication is Indication.TOTAL_PASSED, report.errors
        assert any(s.startswith("element:#lot1 <Lot>") for s in report.signed_data)
    else:
        assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
        assert "#lot1" in report.errors[0]


XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@pytest.mark.parametrize("method", [C10, C11])
def test_signed_info_inherits_xml_lang_from_the_document(
    pki: LoopbackPKI, policy: ValidationPolicy, method: CanonicalizationMethod
) -> None:
    # SignedInfo and the referenced element both sit below an xml:lang: C14N 1.0 and 1.1 both carry it over
    # to the apex (a simple inheritable attribute). Expected forms written by hand: the element alone plus
    # xml:lang="fr".
    document = etree.fromstring(b'<Dossier xml:lang="fr"><Offre Id="o"><Prix>100000 EUR</Prix></Offre></Dossier>')
    signer = XAdESSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        c14n_algorithm=method,
    )
    signed = signer.sign(document, key=pki.signer.key, cert=[pki.signer.cert], reference_uri=["#o"])
    signature = signed.find("ds:Signature", NS)
    as_signxml_did = bytes(etree.tostring(signed))
    offre = b'<Offre Id="o" xml:lang="fr"><Prix>100000 EUR</Prix></Offre>'
    reference = signature.find("ds:SignedInfo/ds:Reference[@URI='#o']", NS)
    reference.find("ds:DigestValue", NS).text = base64.b64encode(hashlib.sha256(offre).digest()).decode()
    # SignedProperties and KeyInfo sit below it too
    for ref in signature.findall("ds:SignedInfo/ds:Reference", NS):
        target = signature.xpath(f"//*[@Id='{ref.get('URI')[1:]}']")[0]
        if target.get("Id") == "o":
            continue
        alone = etree.fromstring(etree.tostring(target, with_tail=False))
        alone.set(XML_LANG, "fr")
        digest = hashlib.sha256(etree.tostring(alone, method="c14n")).digest()
        ref.find("ds:DigestValue", NS).text = base64.b64encode(digest).decode()
    resign(signature, pki.signer, {XML_LANG: "fr"})
    report = validate_xades("dossier.xml", etree.tostring(signed), policy, {})[0]
    assert report.indication is Indication.TOTAL_PASSED, report.errors

    # signxml's own output drops the inherited xml:lang everywhere: not what the method it names computes
    report = validate_xades("dossier.xml", as_signxml_did, policy, {})[0]
    assert report.indication is Indication.TOTAL_FAILED, report.errors
    assert report.subindication in (SubIndication.SIG_CRYPTO_FAILURE, SubIndication.HASH_FAILURE)
