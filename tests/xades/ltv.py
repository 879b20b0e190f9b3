"""Producing XAdES B-LT and B-LTA in the tests: unsigned properties added with lxml to a XAdES-T signature.

- B-LT: ``fetch_crl`` / ``fetch_ocsp`` get revocation data from the loopback PKI over HTTP (a real GET of
  the CRL, a real OCSP POST); ``add_validation_data`` embeds it with the chain as
  ``xades:CertificateValues`` and ``xades:RevocationValues`` (EN 319 132-1 §5.4.1, §5.4.2).
- B-LTA: ``add_archive_timestamp`` computes the ArchiveTimeStamp input written out from EN 319 132-1
  §5.5.2.2 independently of bidproc's validator (references' data, SignedInfo, SignatureValue, KeyInfo,
  preceding unsigned signature properties, other ds:Objects; inclusive C14N 1.0) and asks the loopback TSA.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from lxml import etree

from tests.xades.pki import Identity, LoopbackPKI
from tests.xades.signing import C14N_10, DS, NS, XADES, request_token

XADES141 = "http://uri.etsi.org/01903/v1.4.1#"


def fetch_crl(pki: LoopbackPKI) -> bytes:
    with urllib.request.urlopen(f"{pki.base}/root.crl", timeout=5) as response:
        return bytes(response.read())


def fetch_ocsp(pki: LoopbackPKI, who: Identity) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(who.cert, pki.root.cert, hashes.SHA256()).build()
    http = urllib.request.Request(
        f"{pki.base}/ocsp",
        data=request.public_bytes(Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    with urllib.request.urlopen(http, timeout=5) as response:
        der = bytes(response.read())
    assert ocsp.load_der_ocsp_response(der).response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    return der


def _usp(signature: etree._Element) -> etree._Element:
    usp = signature.find(
        "ds:Object/xades:QualifyingProperties/xades:UnsignedProperties/xades:UnsignedSignatureProperties", NS
    )
    assert usp is not None, "add the SignatureTimeStamp first"
    return usp


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


def add_validation_data(
    signature: etree._Element,
    certificates: list[x509.Certificate],
    crls: list[bytes] = (),  # type: ignore[assignment]
    ocsps: list[bytes] = (),  # type: ignore[assignment]
) -> None:
    usp = _usp(signature)
    if certificates:
        values = etree.SubElement(usp, f"{{{XADES}}}CertificateValues")
        for cert in certificates:
            etree.SubElement(values, f"{{{XADES}}}EncapsulatedX509Certificate").text = _b64(
                cert.public_bytes(Encoding.DER)
            )
    if crls or ocsps:
        revocation = etree.SubElement(usp, f"{{{XADES}}}RevocationValues")
        if crls:
            crl_values = etree.SubElement(revocation, f"{{{XADES}}}CRLValues")
            for der in crls:
                etree.SubElement(crl_values, f"{{{XADES}}}EncapsulatedCRLValue").text = _b64(der)
        if ocsps:
            ocsp_values = etree.SubElement(revocation, f"{{{XADES}}}OCSPValues")
            for der in ocsps:
                etree.SubElement(ocsp_values, f"{{{XADES}}}EncapsulatedOCSPValue").text = _b64(der)


def add_timestamp_validation_data(signature: etree._Element, ocsps: list[bytes]) -> None:
    """xadesv141:TimeStampValidationData right after the SignatureTimeStamp it serves (EN 319 132-1 §5.5.1)."""
    usp = _usp(signature)
    stamp = usp.find("xades:SignatureTimeStamp", NS)
    assert stamp is not None
    data = etree.Element(f"{{{XADES141}}}TimeStampValidationData")
    stamp.addnext(data)
    revocation = etree.SubElement(data, f"{{{XADES}}}RevocationValues")
    ocsp_values = etree.SubElement(revocation, f"{{{XADES}}}OCSPValues")
    for der in ocsps:
        etree.SubElement(ocsp_values, f"{{{XADES}}}EncapsulatedOCSPValue").text = _b64(der)


def _c14n(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=False, with_comments=False))


def _reference_octets(signature: etree._Element, reference: etree._Element, files: dict[str, bytes]) -> bytes:
    """What a ds:Reference designates after its transforms, as octets (XML-DSig §4.4.3)."""
    uri = reference.get("URI", "")
    if uri in files:
        return files[uri]  # a detached file: its bytes (these tests put no transforms on them)
    algorithms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
    if uri == "":  # the whole document, where the enveloped-signature transform takes the signature out
        assert "http://www.w3.org/2000/09/xmldsig#enveloped-signature" in algorithms
        document = copy.deepcopy(signature.getroottree().getroot())
        for inner in document.iter(f"{{{DS}}}Signature"):
            inner.getparent().remove(inner)
        return _c14n(document)
    (target,) = signature.getroottree().xpath("//*[@Id=$v]", v=uri[1:])
    return _c14n(target)  # a node set, or a C14N (1.1: same bytes here) transform's output


def archive_input(signature: etree._Element, files: dict[str, bytes]) -> bytes:
    """EN 319 132-1 §5.5.2.2 for the signatures these tests make."""
    out = b"".join(_reference_octets(signature, r, files) for r in signature.findall("ds:SignedInfo/ds:Reference", NS))
    for name in ("ds:SignedInfo", "ds:SignatureValue", "ds:KeyInfo"):
        out += _c14n(signature.find(name, NS))
    out += b"".join(_c14n(child) for child in _usp(signature))
    for obj in signature.findall("ds:Object", NS):  # every ds:Object but the QualifyingProperties' one
        if obj.find("xades:QualifyingProperties", NS) is None:
            out += _c14n(obj)
    return out


def add_archive_timestamp(signature: etree._Element, tsa_url: str, files: dict[str, bytes]) -> None:
    token = request_token(tsa_url, hashlib.sha256(archive_input(signature, files)).digest())
    stamp = etree.SubElement(_usp(signature), f"{{{XADES141}}}ArchiveTimeStamp", Id=f"{signature.get('Id')}-ATS")
    etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N_10)
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = _b64(token)
