"""Red team: content a reader sees but no reference signs (base64 Objects, the document's own text and
attributes, processing instructions outside the root), and references that must never resolve outside the bid.

Each file starts from a valid signature made by signxml with the test PKI; the attacker then edits the file
with lxml without touching anything that is digested (the signature still verifies).
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.validate import validate_file
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import LoopbackPKI
from tests.xades.signing import DS, NS, reference, resign, sign_enveloped, sign_enveloping

BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
PARTIAL = "xml.partially_signed"
# 48 bytes (a multiple of 3): its base64 has no padding, so base64 text appended to it decodes, with any
# decoder, to this PDF followed by the appended bytes (an incremental update that changes the price).
PDF = b"%PDF-1.7 offre financiere: 100000 EUR HT %%EOF\n\n"
UPDATE = b"\n5 0 obj (prix: 1 EUR) endobj %%EOF\n"  # 36 bytes: no padding either


def validate(data: bytes, policy: ValidationPolicy, files: dict[str, bytes] | None = None) -> SignatureReport:
    reports = validate_xades("offre.xml", data, policy, files or {})
    assert len(reports) == 1, reports
    return reports[0]


def base64_object_signature(pki: LoopbackPKI, pdf: bytes) -> tuple[etree._Element, etree._Element]:
    """EU DSS's enveloping shape: a manifest entry over a ds:Object holding ``pdf`` in base64 (base64 transform)."""
    content = etree.Element(f"{{{DS}}}Object", Id="o-1", nsmap={"ds": DS})
    content.text = base64.b64encode(pdf).decode()
    manifest = etree.Element(f"{{{DS}}}Manifest", Id="manifest", nsmap={"ds": DS})
    entry = reference(manifest, "#o-1", pdf)
    transforms = etree.Element(f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=BASE64)
    entry.insert(0, transforms)
    signature = sign_enveloping(manifest, pki.signer)
    signature.append(content)
    return signature, content


def test_base64_object_as_signed_passes_also_line_wrapped(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    assert len(PDF) % 3 == 0 and len(UPDATE) % 3 == 0
    signature, content = base64_object_signature(pki, PDF)
    report = validate(etree.tostring(signature), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    text = base64.b64encode(PDF).decode()
    content.text = "\n" + "\n".join(text[i : i + 16] for i in range(0, len(text), 16)) + "\n"  # MIME-style lines
    report = validate(etree.tostring(signature), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors


@pytest.mark.parametrize("separator", ["comment", "processing-instruction", "element"])
def test_base64_object_with_text_appended_after_a_node(
    pki: LoopbackPKI, policy: ValidationPolicy, separator: str
) -> None:
    # The Object's text is the signed base64, then a node, then more base64: the Object's content (its string
    # value, what the base64 transform decodes) is the PDF plus an incremental update. Only the first text
    # node was decoded and digested: TOTAL_PASSED over a document that is not the one the Object holds.
    signature, content = base64_object_signature(pki, PDF)
    node = {
        "comment": etree.Comment(" page 2 "),
        "processing-instruction": etree.ProcessingInstruction("page", "2"),
        "element": etree.Element(f"{{{DS}}}Page"),
    }[separator]
    content.append(node)
    node.tail = base64.b64encode(UPDATE).decode()
    decoded = base64.b64decode(str(content.xpath("string()")))
    assert decoded == PDF + UPDATE  # what the Object holds, for a reader
    report = validate(etree.tostring(signature), policy)
    assert report.indication is not Indication.TOTAL_PASSED, report.signed_data
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_base64_object_with_data_after_the_padding(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # "...==" then more base64: Python's lenient decoder stops at the padding, other decoders go on. The
    # content is ambiguous: never a pass.
    pdf = PDF + b"x"  # padded base64
    signature, content = base64_object_signature(pki, pdf)
    assert validate(etree.tostring(signature), policy).indication is Indication.TOTAL_PASSED
    content.text = base64.b64encode(pdf).decode() + base64.b64encode(UPDATE).decode()
    assert base64.b64decode(content.text) == pdf  # the lenient reading: unchanged
    report = validate(etree.tostring(signature), policy)
    assert report.indication is Indication.TOTAL_FAILED, report.signed_data


def enveloped_over_lot(pki: LoopbackPKI) -> etree._Element:
    document = etree.fromstring(b'<Offre><Lot Id="lot1"><Prix>100000 EUR</Prix></Lot></Offre>')
    signer = XAdESSigner(method=SignatureConstructionMethod.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256)
    signed: etree._Element = signer.sign(document, key=pki.signer.key, cert=[pki.signer.cert], reference_uri=["#lot1"])
    return signed


def _root_text(root: etree._Element) -> None:
    root.text = "Prix final apres remise : 1 EUR"


def _tail_after_lot(root: etree._Element) -> None:
    root.find("Lot").tail = "Prix final apres remise : 1 EUR"


def _tail_after_signature(root: etree._Element) -> None:
    root.find("ds:Signature", NS).tail = "Prix final apres remise : 1 EUR"


def _root_attribute(root: etree._Element) -> None:
    root.set("prixFinal", "1 EUR")


@pytest.mark.parametrize("edit", [_root_text, _tail_after_lot, _tail_after_signature, _root_attribute])
def test_unsigned_text_or_attribute_of_the_document_root(
    pki: LoopbackPKI, policy: ValidationPolicy, edit: object
) -> None:
    # The signature covers <Lot> only; the root element's own text and attributes are content a reader sees.
    root = enveloped_over_lot(pki)
    report = validate(etree.tostring(root), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert not any(w.startswith(PARTIAL) for w in report.warnings), report.warnings
    assert callable(edit)
    edit(root)
    report = validate(etree.tostring(root), policy)
    # valid over what it signs, not over the file (a text tail after a signed element already makes
    # signxml's copy of it unparsable: a format failure, not a pass)
    assert report.indication is not Indication.TOTAL_PASSED or any(w.startswith(PARTIAL) for w in report.warnings)
    assert not validate_file("offre.xml", etree.tostring(root), policy).bottom_line


STYLESHEET = b'<?xml-stylesheet type="text/xsl" href="data:text/xml;base64,PHhzbDpzdHlsZXNoZWV0Lz4="?>'


def test_stylesheet_instruction_before_an_enveloped_document(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # URI="" with the enveloped transform: signxml digests the root element, not the document, so a
    # processing instruction before the root (an XSLT stylesheet that re-renders the bid) is signed by nothing.
    signed = etree.tostring(sign_enveloped(etree.fromstring(b"<bid><lot>42 000 EUR</lot></bid>"), pki.signer))
    assert validate(signed, policy).indication is Indication.TOTAL_PASSED
    for attacked in (STYLESHEET + signed, b'<?xml version="1.0"?>\n' + STYLESHEET + b"\n" + signed):
        report = validate(attacked, policy)
        assert any(w.startswith(PARTIAL) and "xml-stylesheet" in w for w in report.warnings), report.warnings
        assert not validate_file("bid.xml", attacked, policy).bottom_line


def test_stylesheet_instruction_before_an_enveloping_signature(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    signed = etree.tostring(sign_enveloping(etree.fromstring(b"<dume>ok</dume>"), pki.signer))
    report = validate(signed, policy)
    assert report.indication is Indication.TOTAL_PASSED and not any(w.startswith(PARTIAL) for w in report.warnings)
    attacked = STYLESHEET + signed
    report = validate(attacked, policy)
    assert any(w.startswith(PARTIAL) and "xml-stylesheet" in w for w in report.warnings), report.warnings
    assert not validate_file("dume.xml", attacked, policy).bottom_line


def test_unsigned_attribute_on_an_element_around_the_signed_one(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # Inside the signature's own ds:Object: <Offre> holds the signed <Lot>; an attribute added to <Offre>
    # is content inside the signature that no reference covers.
    lot = etree.fromstring(b'<Lot Id="l1"><Prix>100000 EUR</Prix></Lot>')
    manifest = etree.Element(f"{{{DS}}}Manifest", Id="manifest", nsmap={"ds": DS})
    reference(manifest, "#l1", lot)
    signature = sign_enveloping(manifest, pki.signer)
    holder = etree.SubElement(signature, f"{{{DS}}}Object", Id="content")
    offre = etree.SubElement(holder, "Offre")
    offre.append(lot)
    report = validate(etree.tostring(signature), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    offre.set("remise", "99.999%")
    report = validate(etree.tostring(signature), policy)
    assert report.indication is not Indication.TOTAL_PASSED, report.signed_data
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)


@pytest.mark.parametrize(
    "uri",
    [
        "#xpointer(id('lot1'))",
        "#xpointer(/)",
        "file:///etc/hostname",
        "file:///proc/self/environ",
        "http://127.0.0.1:9/offre.xml",
        "lot1",
    ],
)
def test_signed_info_reference_outside_the_document_never_resolves(
    pki: LoopbackPKI, policy: ValidationPolicy, uri: str
) -> None:
    # The signer points a data reference elsewhere (digest of what it would find there); nothing outside the
    # bid's own files is ever read, and an XPointer is no way around the Id rules.
    document = etree.fromstring(b'<Offre><Lot Id="lot1"><Prix>100000 EUR</Prix></Lot></Offre>')
    signature = sign_enveloping(etree.fromstring(b"<Conditions>standard</Conditions>"), pki.signer)
    signed_info = signature.find("ds:SignedInfo", NS)
    lot = document.find("Lot")
    target: etree._Element | bytes = lot
    if uri.startswith("file:"):
        try:
            with open(uri.removeprefix("file://"), "rb") as handle:
                target = handle.read()
        except OSError:
            target = b""
    reference(signed_info, uri, target)
    resign(signature, pki.signer)
    document.append(signature)
    pki.requests.clear()
    report = validate(etree.tostring(document), policy, {"offre.pdf": b"%PDF"})
    assert report.indication is not Indication.TOTAL_PASSED, report.signed_data
    assert not any(s.startswith("file:") for s in report.signed_data), report.signed_data  # nothing was read
    assert not any("offre.xml" in r for r in pki.requests)


def test_detached_reference_resolves_only_to_the_bids_files(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # A detached data reference naming a file of the validating machine: never read, whatever its digest.
    secret = b"not a bid file"
    signature = sign_enveloping(etree.fromstring(b"<Conditions>standard</Conditions>"), pki.signer)
    signed_info = signature.find("ds:SignedInfo", NS)
    for uri in ("/etc/hostname", "../../../../etc/hostname", "file:/etc/hostname"):
        reference(signed_info, uri, secret)
    resign(signature, pki.signer)
    report = validate(etree.tostring(signature), policy, {"offre.pdf": b"%PDF"})
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)
    # the same names resolve, by base name, to a file *of the bid* called hostname: its bytes, nothing else
    report = validate(etree.tostring(signature), policy, {"hostname": secret})
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert all(s.endswith(hashlib.sha256(secret).hexdigest()) for s in report.signed_data if s.startswith("file:"))


@pytest.mark.parametrize("target", ["key-info-extension", "properties-object"])
def test_signature_over_its_own_parts_only(pki: LoopbackPKI, policy: ValidationPolicy, target: str) -> None:
    # The signer drops the document (its Object and reference) and signs a part of the signature instead:
    # an element inside KeyInfo (the schema lets other namespaces in), or the ds:Object holding the
    # qualifying properties. No document is signed.
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    signed_info = signature.find("ds:SignedInfo", NS)
    qualifying_object = signature.find("ds:Object/xades:QualifyingProperties/..", NS)
    content = next(o for o in signature.findall("ds:Object", NS) if o is not qualifying_object)
    data_ref = signed_info.find(f"ds:Reference[@URI='#{content.get('Id')}']", NS)
    signed_info.remove(data_ref)
    signature.remove(content)
    if target == "key-info-extension":  # KeyInfo's own reference goes: what is added inside is signed instead
        key_info = signature.find("ds:KeyInfo", NS)
        signed_info.remove(signed_info.find(f"ds:Reference[@URI='#{key_info.get('Id')}']", NS))
        part = etree.SubElement(key_info, "{urn:example:key-info}Extension")
        part.text = "key usage note"
    else:
        part = qualifying_object
    part.set("Id", "own-part")
    standalone = etree.fromstring(etree.tostring(part, with_tail=False))  # exclusive C14N: same bytes in place
    reference(signed_info, "#own-part", standalone)
    resign(signature, pki.signer)
    report = validate(etree.tostring(signature), policy)
    assert report.indication is not Indication.TOTAL_PASSED, report.signed_data
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)
    assert "signs no data object" in report.errors[0]


def test_signed_element_followed_by_text_is_judged_not_refused(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # Mixed content: the signed <Lot> is followed by text in its parent. signxml's copy of the element took
    # that text along and could not be parsed: TOTAL_FAILED/FORMAT_FAILURE against a valid signature. Now the
    # signature holds over <Lot>, and the unsigned text beside it is reported.
    document = etree.fromstring(b'<Offre><Lot Id="lot1"><Prix>100000 EUR</Prix></Lot>paiement a 30 jours</Offre>')
    signature = sign_enveloping(etree.fromstring(b"<Conditions>standard</Conditions>"), pki.signer)
    lot = etree.fromstring(etree.tostring(document.find("Lot"), with_tail=False))
    reference(signature.find("ds:SignedInfo", NS), "#lot1", lot)
    resign(signature, pki.signer)
    document.append(signature)
    report = validate(etree.tostring(document), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(w.startswith(PARTIAL) and "Offre text" in w for w in report.warnings), report.warnings
    document.find("Lot/Prix").text = "1 EUR"
    report = validate(etree.tostring(document), policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_enveloped_signature_followed_by_text(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # URI="" over a document whose text continues after the ds:Signature (signed with it: the enveloped
    # transform keeps the signature's tail). Valid as signed; the text changed afterwards is a hash failure.
    from signxml.util import _remove_sig

    root = sign_enveloped(etree.fromstring(b"<bid><lot>42 000 EUR</lot></bid>"), pki.signer)
    signature = root.find("ds:Signature", NS)
    signature.tail = " hors taxes"
    unsigned = etree.fromstring(etree.tostring(root))
    _remove_sig(unsigned.find("ds:Signature", NS))
    data_ref = signature.find("ds:SignedInfo/ds:Reference[@URI='']", NS)
    digest = hashlib.sha256(etree.tostring(unsigned, method="c14n")).digest()
    data_ref.find("ds:DigestValue", NS).text = base64.b64encode(digest).decode()
    resign(signature, pki.signer)
    report = validate(etree.tostring(root), policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert not any(w.startswith(PARTIAL) for w in report.warnings), report.warnings
    signature.tail = " toutes taxes comprises"
    report = validate(etree.tostring(root), policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
