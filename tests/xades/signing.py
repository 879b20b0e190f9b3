"""Producing test XAdES signatures: signxml's XAdESSigner (BES), plus a SignatureTimeStamp for XAdES-T.

Two things signxml cannot do are hand-written here, test-side only:
- detached references to *non-XML* files (a PDF of the bid): signxml digests the canonicalised XML it is
  given, so ``FileSigner`` replaces the digest of each file reference by the digest of the file's bytes
  (and drops the XML transforms) before SignedInfo is signed;
- XAdES-T: signxml has no SignatureTimeStamp, so ``add_signature_timestamp`` asks the loopback TSA (a real
  RFC 3161 request over HTTP, pyhanko's ``RequestsHTTPTimeStamper``) to stamp the canonicalised
  ds:SignatureValue and adds the unsigned property.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from lxml import etree
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from signxml import SignatureConstructionMethod, SignatureMethod
from signxml.xades import XAdESSigner

from tests.xades.pki import Identity

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES}
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


class FileSigner(XAdESSigner):
    """Detached XAdES whose data references point at other files of the bid, by name."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.ECDSA_SHA256)
        self.files = files

    def _build_sig(
        self,
        sig_root: Any,
        references: Any,
        c14n_inputs: Any,
        inclusive_ns_prefixes: Any,
        exclude_c14n_transform_element: bool = False,
    ) -> Any:
        signed_info, signature_value = super()._build_sig(
            sig_root, references, c14n_inputs, inclusive_ns_prefixes, exclude_c14n_transform_element
        )
        for reference in signed_info.findall("ds:Reference", NS):
            content = self.files.get(reference.get("URI"))
            if content is None:
                continue
            transforms = reference.find("ds:Transforms", NS)
            if transforms is not None:
                reference.remove(transforms)
            reference.find("ds:DigestValue", NS).text = base64.b64encode(hashlib.sha256(content).digest()).decode()
        return signed_info, signature_value


def sign_detached(files: dict[str, bytes], who: Identity) -> etree._Element:
    signer = FileSigner(files)
    return signer.sign(etree.Element("placeholder"), key=who.key, cert=[who.cert], reference_uri=list(files))


def sign_enveloped(document: etree._Element, who: Identity) -> etree._Element:
    signer = XAdESSigner(method=SignatureConstructionMethod.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256)
    return signer.sign(document, key=who.key, cert=[who.cert])


def sign_enveloping(content: etree._Element, who: Identity) -> etree._Element:
    signer = XAdESSigner(
        method=SignatureConstructionMethod.enveloping, signature_algorithm=SignatureMethod.ECDSA_SHA256
    )
    return signer.sign(content, key=who.key, cert=[who.cert])


def request_token(tsa_url: str, digest: bytes) -> bytes:
    """A real RFC 3161 request to the loopback TSA; returns the DER timestamp token."""
    stamper = RequestsHTTPTimeStamper(tsa_url)
    token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    return bytes(token.dump())


def add_signature_timestamp(signature: etree._Element, tsa_url: str, *, imprint_of: bytes | None = None) -> None:
    """Add xades:SignatureTimeStamp over the canonicalised ds:SignatureValue (in its document context).

    ``imprint_of`` stamps other bytes instead: a timestamp that does not belong to this signature.
    """
    value = signature.find("ds:SignatureValue", NS)
    assert value is not None
    canonical = etree.tostring(value, method="c14n", exclusive=False, with_comments=False)
    token = request_token(tsa_url, hashlib.sha256(imprint_of if imprint_of is not None else canonical).digest())
    qualifying = signature.find("ds:Object/xades:QualifyingProperties", NS)
    assert qualifying is not None
    unsigned = etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties")
    usp = etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")
    stamp = etree.SubElement(usp, f"{{{XADES}}}SignatureTimeStamp", Id=f"{signature.get('Id')}-TS")
    etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm=C14N_10)
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = base64.b64encode(token).decode()


class ChainReferencingSigner(XAdESSigner):
    """SigningCertificateV2 naming the signer *and* its issuer, while KeyInfo carries the signer only."""

    def __init__(self, issuer_der: bytes) -> None:
        super().__init__(method=SignatureConstructionMethod.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256)
        self.issuer_der = issuer_der

    def add_signing_certificate(self, signed_signature_properties: Any, sig_root: Any, signing_settings: Any) -> None:
        super().add_signing_certificate(signed_signature_properties, sig_root, signing_settings)
        v2 = signed_signature_properties.find("xades:SigningCertificateV2", NS)
        cert = etree.SubElement(v2, f"{{{XADES}}}Cert")
        digest = etree.SubElement(cert, f"{{{XADES}}}CertDigest")
        etree.SubElement(digest, f"{{{DS}}}DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
        etree.SubElement(digest, f"{{{DS}}}DigestValue").text = base64.b64encode(
            hashlib.sha256(self.issuer_der).digest()
        ).decode()


EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def exc_digest(element: etree._Element) -> str:
    """Base64 SHA-256 of the element's exclusive C14N (independent of where the element will sit)."""
    canonical = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode()


def reference(parent: etree._Element, uri: str, target: etree._Element | bytes | None, **attrs: str) -> etree._Element:
    """A ds:Reference to ``target`` with its SHA-256 digest: an element through exclusive C14N, a file's bytes
    as they are, None a dummy digest."""
    ref = etree.SubElement(parent, f"{{{DS}}}Reference", URI=uri, **attrs)
    if isinstance(target, etree._Element):
        transforms = etree.SubElement(ref, f"{{{DS}}}Transforms")
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=EXC_C14N)
    etree.SubElement(ref, f"{{{DS}}}DigestMethod", Algorithm=SHA256)
    if isinstance(target, etree._Element):
        digest = exc_digest(target)
    else:
        digest = base64.b64encode(hashlib.sha256(target).digest() if target is not None else b"\0" * 32).decode()
    etree.SubElement(ref, f"{{{DS}}}DigestValue").text = digest
    return ref


def resign(signature: etree._Element, who: Identity, inherited: dict[str, str] | None = None) -> None:
    """Recompute SignatureValue over the (edited) SignedInfo: the signer itself crafting a deceptive signature.

    SignedInfo is canonicalised as signxml does it (a standalone copy, lxml's inclusive C14N), which is
    right as long as no xml:* attribute sits above it; ``inherited`` gives the ones C14N must carry over.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info is not None
    method = signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm")
    exclusive = method.startswith(EXC_C14N)
    standalone = etree.fromstring(etree.tostring(signed_info, with_tail=False))
    for name, value in (inherited or {}).items():
        standalone.set(name, value)
    canonical = etree.tostring(standalone, method="c14n", exclusive=exclusive)
    assert isinstance(who.key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(who.key.sign(canonical, ec.ECDSA(hashes.SHA256())))
    size = (who.key.curve.key_size + 7) // 8
    value = signature.find("ds:SignatureValue", NS)
    assert value is not None
    value.text = base64.b64encode(r.to_bytes(size, "big") + s.to_bytes(size, "big")).decode()
