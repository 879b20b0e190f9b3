"""Signature wrapping through ds:Manifest and ds:Object (issue 8, class 1): never a pass over unsigned content.

XML-DSig core validation does not check a manifest's references; an enveloping signature over a manifest
(or over one ds:Object) can sit beside the content a reader takes for the signed document. Each file here is
crafted with signxml (the enveloping signature) and lxml (manifests, decoys, edits), signed by the test PKI.
"""

from __future__ import annotations

import base64
import copy
import hashlib

from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureReport, SubIndication
from bidproc.signature.xades.validator import validate_xades
from tests.xades.pki import LoopbackPKI
from tests.xades.signing import DS, NS, XADES, reference, resign, sign_enveloped, sign_enveloping

MANIFEST_TYPE = "http://www.w3.org/2000/09/xmldsig#Manifest"
NOT_FOUND = (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)
ANNEXE = b"%PDF-1.7 annexe financiere"


def content_object(object_id: str, price: str) -> etree._Element:
    obj = etree.Element(f"{{{DS}}}Object", Id=object_id, nsmap={"ds": DS})
    etree.SubElement(etree.SubElement(obj, "Offre"), "Prix").text = price
    return obj


def manifest_signature(pki: LoopbackPKI, entries: dict[str, etree._Element | bytes | None]) -> etree._Element:
    """An enveloping XAdES whose only data reference is a ds:Object holding a ds:Manifest of ``entries``."""
    manifest = etree.Element(f"{{{DS}}}Manifest", Id="manifest", nsmap={"ds": DS})
    for uri, target in entries.items():
        reference(manifest, uri, target)
    return sign_enveloping(manifest, pki.signer)


def validate(
    signature: etree._Element, policy: ValidationPolicy, files: dict[str, bytes] | None = None
) -> SignatureReport:
    reports = validate_xades("offre.xml", etree.tostring(signature), policy, files or {})
    assert len(reports) == 1, reports
    return reports[0]


def test_valid_manifest_covering_the_content_passes(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = content_object("offre", "100000 EUR")
    signature = manifest_signature(pki, {"#offre": document, "annexe.pdf": ANNEXE})
    signature.append(document)
    report = validate(signature, policy, {"annexe.pdf": ANNEXE})
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert any(s.startswith("manifest:#") for s in report.signed_data), report.signed_data
    assert any(s.startswith("manifest-entry:#offre <Object>") for s in report.signed_data), report.signed_data
    assert any(s.startswith("manifest-file:annexe.pdf ") for s in report.signed_data), report.signed_data
    assert not any(w.startswith("xml.partially_signed") for w in report.warnings)

    # the same manifest, the annexe replaced: a digest failure of a manifest entry
    report = validate(signature, policy, {"annexe.pdf": b"%PDF-1.7 autre annexe"})
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_manifest_covering_a_decoy_while_the_content_is_unsigned(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    decoy = content_object("decoy", "100000 EUR")
    signature = manifest_signature(pki, {"#decoy": decoy})
    signature.append(decoy)
    signature.append(content_object("offre", "1 EUR"))  # what a reader takes for the bid: signed by nothing
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors
    assert "ds:Object #offre not covered" in report.errors[0]
    assert any(w.startswith("xml.partially_signed") and "#offre" in w for w in report.warnings)


def test_manifest_with_a_broken_digest_is_a_hash_failure(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    document = content_object("offre", "100000 EUR")
    signature = manifest_signature(pki, {"#offre": document})
    signature.append(document)
    assert validate(signature, policy).indication is Indication.TOTAL_PASSED  # untouched: valid
    price = document.find("Offre/Prix")
    assert price is not None
    price.text = "1 EUR"  # changed after signing: SignedInfo still verifies, the manifest entry does not
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert "manifest reference #offre" in report.errors[0]


def test_manifest_reference_to_a_missing_id_or_file(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    for missing in ("#nowhere", "offre.pdf"):
        signature = manifest_signature(pki, {missing: None})
        report = validate(signature, policy)
        assert (report.indication, report.subindication) == NOT_FOUND, (missing, report.errors)
        assert "manifest reference" in report.errors[0]


def test_no_data_object_signed(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # an empty manifest is not even schema-valid XML-DSig
    report = validate(manifest_signature(pki, {}), policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    # a signature over its properties alone, the content object dropped with its reference
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info is not None
    data_ref = signed_info.find("ds:Reference[@Type='http://www.w3.org/2000/09/xmldsig#Object']", NS)
    data_ref = data_ref if data_ref is not None else signed_info.findall("ds:Reference", NS)[0]
    target = signature.find(f"ds:Object[@Id='{data_ref.get('URI')[1:]}']", NS)
    signed_info.remove(data_ref)
    signature.remove(target)
    resign(signature, pki.signer)
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors


def test_object_signed_while_the_content_is_in_another_object(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    base64_object = etree.fromstring(f'<ds:Object xmlns:ds="{DS}">MSBFVVI=</ds:Object>')
    for extra in (content_object("offre", "1 EUR"), base64_object):
        signature = sign_enveloping(etree.fromstring(b"<Conditions>standard</Conditions>"), pki.signer)
        assert validate(signature, policy).indication is Indication.TOTAL_PASSED
        signature.append(extra)  # an unsigned Object with content (elements, or base64 text)
        report = validate(signature, policy)
        assert (report.indication, report.subindication) == NOT_FOUND, report.errors
        assert any(w.startswith("xml.partially_signed") for w in report.warnings)


def test_fake_signed_properties_in_an_object(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # The signed SignedProperties moved into a hidden ds:Object; the QualifyingProperties now hold a fake one
    # (another Id, another signing time) that nothing signs.
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    qualifying = signature.find("ds:Object/xades:QualifyingProperties", NS)
    assert qualifying is not None
    real = qualifying.find("xades:SignedProperties", NS)
    fake = copy.deepcopy(real)
    fake.set("Id", "fake-properties")
    fake.find(".//xades:SigningTime", NS).text = "2020-01-01T00:00:00+00:00"
    qualifying.replace(real, fake)
    hidden = etree.SubElement(signature, f"{{{DS}}}Object")
    holder = etree.SubElement(hidden, f"{{{XADES}}}QualifyingProperties", Target="#elsewhere")
    holder.append(real)
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors
    assert "not this signature's xades:SignedProperties" in report.errors[0]


def test_signed_properties_reference_pointing_at_a_decoy(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # The signer's own SignedInfo says Type=SignedProperties but designates a decoy element; the real
    # properties are left unsigned.
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    decoy_object = etree.SubElement(signature, f"{{{DS}}}Object")
    decoy = etree.SubElement(decoy_object, "Proprietes", Id="decoy-properties")
    decoy.text = "signing time: 2020-01-01"
    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info is not None
    old = signed_info.find("ds:Reference[@Type='http://uri.etsi.org/01903#SignedProperties']", NS)
    new = reference(signed_info, "#decoy-properties", decoy, Type="http://uri.etsi.org/01903#SignedProperties")
    signed_info.remove(new)
    signed_info.replace(old, new)
    resign(signature, pki.signer)
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors


def test_decoy_signed_properties_with_a_duplicated_id(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # A second SignedProperties carrying the signed one's Id: references are ambiguous, refused up front as
    # for every duplicated Id (the shared corpus's XSW file: TOTAL_FAILED/FORMAT_FAILURE), never a pass.
    signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
    real = signature.find("ds:Object/xades:QualifyingProperties/xades:SignedProperties", NS)
    hidden = etree.SubElement(etree.SubElement(signature, f"{{{DS}}}Object"), f"{{{XADES}}}QualifyingProperties")
    hidden.append(copy.deepcopy(real))
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert "duplicate Id" in report.errors[0]


def test_manifest_entry_over_a_base64_object_as_eu_dss_makes_it(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # EU DSS's enveloping-with-manifest shape: SignedInfo -> #manifest (Type Manifest); the manifest's entry
    # -> a ds:Object holding the document in base64, with a base64 transform (digest over the decoded bytes).
    pdf = b"%PDF-1.7 offre financiere: 100000 EUR"
    content = etree.Element(f"{{{DS}}}Object", Id="o-1", nsmap={"ds": DS})
    content.text = base64.b64encode(pdf).decode()
    manifest = etree.Element(f"{{{DS}}}Manifest", Id="manifest", nsmap={"ds": DS})
    entry = reference(manifest, "#o-1", pdf)
    transforms = etree.Element(f"{{{DS}}}Transforms")
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#base64")
    entry.insert(0, transforms)
    signature = sign_enveloping(manifest, pki.signer)
    signature.append(content)
    report = validate(signature, policy)
    assert report.indication is Indication.TOTAL_PASSED, report.errors
    assert f"sha256={hashlib.sha256(pdf).hexdigest()}" in next(s for s in report.signed_data if "#o-1" in s)

    content.text = base64.b64encode(pdf.replace(b"100000", b"1")).decode()  # another document, same place
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_oversized_manifest_is_not_judged(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    entries: dict[str, etree._Element | bytes | None] = {f"annexe-{n}.pdf": ANNEXE for n in range(201)}
    report = validate(manifest_signature(pki, entries), policy, {f"annexe-{n}.pdf": ANNEXE for n in range(201)})
    assert (report.indication, report.subindication) == (Indication.INDETERMINATE, SubIndication.GENERIC)
    assert "more than the limit" in report.errors[0]


def test_manifest_naming_only_the_signatures_own_parts(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # a manifest whose entries are the signature's own KeyInfo: verified, but no document is signed
    signature = manifest_signature(pki, {})
    manifest = signature.find(".//ds:Manifest", NS)
    key_info = signature.find("ds:KeyInfo", NS)
    assert manifest is not None and key_info is not None
    reference(manifest, f"#{key_info.get('Id')}", etree.fromstring(etree.tostring(key_info)))
    sign_again(signature, pki)
    report = validate(signature, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors
    assert "signs no data object" in report.errors[0]


def sign_again(signature: etree._Element, pki: LoopbackPKI) -> None:
    """The manifest was edited after signing: re-digest the Object holding it, then re-sign SignedInfo."""
    holder = signature.find("ds:Object/ds:Manifest/..", NS)
    assert holder is not None
    ref = signature.find(f"ds:SignedInfo/ds:Reference[@URI='#{holder.get('Id')}']", NS)
    assert ref is not None
    canonical = etree.tostring(etree.fromstring(etree.tostring(holder, with_tail=False)), method="c14n")
    ref.find("ds:DigestValue", NS).text = base64.b64encode(hashlib.sha256(canonical).digest()).decode()
    resign(signature, pki.signer)


def test_fake_signed_properties_beside_an_unsupported_transform(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # EU DSS's XSW-envelopped-fake-signedProperties shape: the data reference uses an XPath transform (which
    # we do not compute), the signed SignedProperties sit in a second ds:Object and the QualifyingProperties
    # hold a fake one. The wrapping is visible without computing anything: SIGNED_DATA_NOT_FOUND (was
    # INDETERMINATE/GENERIC, "unsupported transform").
    document = etree.fromstring(b"<toto>test</toto>")
    signed = sign_enveloped(document, pki.signer)
    signature = signed.find("ds:Signature", NS)
    qualifying = signature.find("ds:Object/xades:QualifyingProperties", NS)
    real = qualifying.find("xades:SignedProperties", NS)
    fake = copy.deepcopy(real)
    fake.set("Id", "xades-my-content")
    fake.find(".//xades:SigningTime", NS).text = "2218-08-30T14:39:36Z"
    qualifying.replace(real, fake)
    etree.SubElement(signature, f"{{{DS}}}Object").append(real)
    data_ref = signature.find("ds:SignedInfo/ds:Reference[@URI='']", NS)
    transform = etree.SubElement(
        data_ref.find("ds:Transforms", NS),
        f"{{{DS}}}Transform",
        Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116",
    )
    etree.SubElement(transform, f"{{{DS}}}XPath").text = "not(ancestor-or-self::ds:Signature)"
    report = validate(signed, policy)
    assert (report.indication, report.subindication) == NOT_FOUND, report.errors
    assert "not this signature's xades:SignedProperties" in report.errors[0]


def test_signed_object_hidden_in_a_wrapper(pki: LoopbackPKI, policy: ValidationPolicy) -> None:
    # EU DSS's XSW-enveloping-fake-object shape: the signed ds:Object moved inside <wrapper> in another Object
    # (its digest unchanged), where a reader of the signature's Objects does not look; with and without a
    # decoy Object where the reader does look.
    for decoy in (None, "aaaa"):
        signature = sign_enveloping(etree.fromstring(b"<Offre><Prix>100000 EUR</Prix></Offre>"), pki.signer)
        signed_object = signature.find("ds:Object[@Id]", NS)
        assert signed_object is not None and signed_object.find("Offre") is not None
        wrapper = etree.SubElement(etree.SubElement(signature, f"{{{DS}}}Object"), "wrapper")
        wrapper.append(signed_object)
        if decoy is not None:
            signature.insert(signature.index(wrapper.getparent()), etree.Element(f"{{{DS}}}Object", Id="evil"))
            signature.find("ds:Object[@Id='evil']", NS).text = decoy
        report = validate(signature, policy)
        assert (report.indication, report.subindication) == NOT_FOUND, (decoy, report.errors)
        assert "hidden inside <wrapper>" in report.errors[0]
