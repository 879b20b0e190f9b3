"""Crafting CMS test material by hand: B-LT validation data in SignedData.crls, and damaged structures.

pyhanko signs CAdES B-B/B-T only and never writes SignedData.crls; the B-LT files here are a pyhanko
signature with OCSP responses and CRLs added afterwards (unsigned data: the signature stays valid).
The malformed files are raw-byte edits of real signatures, through a minimal TLV tree (:class:`Tlv`)
that re-computes every enclosing length, so each variant breaks exactly one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import cms, core, crl, ocsp
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pki import TestPKI

OCSP_RI = "1.3.6.1.5.5.7.16.2"  # id-ri-ocsp-response (RFC 5940)


def add_signed_data_revinfo(
    signed: bytes,
    ocsps: list[bytes] = (),  # type: ignore[assignment]
    crls: list[bytes] = (),  # type: ignore[assignment]
    basic: bool = False,
    certs: list[bytes] = (),  # type: ignore[assignment]
) -> bytes:
    """CAdES B-LT the EN 319 122-1 way: CRLs as CertificateList and OCSP responses as
    OtherRevocationInfoFormat (id-ri-ocsp-response) in SignedData.crls; ``basic``: the OCSP entries hold a
    BasicOCSPResponse instead of the whole OCSPResponse (seen in the wild); ``certs`` added to
    SignedData.certificates."""
    info = cms.ContentInfo.load(signed)
    sd = info["content"]
    choices = [] if isinstance(sd["crls"], core.Void) else [cms.RevocationInfoChoice.load(c.dump()) for c in sd["crls"]]
    for der in crls:
        choices.append(cms.RevocationInfoChoice(name="crl", value=crl.CertificateList.load(der)))
    for der in ocsps:
        resp = ocsp.OCSPResponse.load(der)
        value = resp["response_bytes"]["response"].parsed.dump() if basic else resp.dump()
        # [1] IMPLICIT OtherRevocationInfoFormat, by hand: asn1crypto only accepts an OCSPResponse there
        body = core.ObjectIdentifier(OCSP_RI).dump() + value
        choices.append(cms.RevocationInfoChoice.load(b"\xa1" + _length(len(body)) + body))
    sd["crls"] = cms.RevocationInfoChoices(choices)
    if certs:
        from asn1crypto import x509

        known = [cms.CertificateChoices.load(c.dump()) for c in sd["certificates"]]
        known += [cms.CertificateChoices(name="certificate", value=x509.Certificate.load(c)) for c in certs]
        sd["certificates"] = cms.CertificateSet(known)
    # not dump(force=True): it would re-parse the OCSP entries as asn1crypto declares them (OCSPResponse)
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump())


# --- a minimal DER/BER tree, to damage one field and keep every other length right ---------------


@dataclass
class Tlv:
    """One TLV: identifier octet(s), and either raw contents (primitive) or children (constructed)."""

    tag: bytes
    contents: bytes = b""
    children: list[Tlv] | None = None
    extra: bytes = field(default=b"")  # bytes after the value inside the parent (kept as found)

    def encode(self) -> bytes:
        body = self.contents if self.children is None else b"".join(c.encode() for c in self.children)
        return self.tag + _length(len(body)) + body


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def parse_tlv(data: bytes, descend: bool = True) -> Tlv:
    """Parse one DER TLV (definite lengths, single-octet tags: what pyhanko's CMS output uses)."""
    node, end = _parse(data, 0, descend)
    assert end == len(data), "trailing bytes"
    return node


def _parse(data: bytes, pos: int, descend: bool) -> tuple[Tlv, int]:
    tag = data[pos : pos + 1]
    first = data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        size = first
    body = data[pos : pos + size]
    end = pos + size
    if descend and tag[0] & 0x20:  # constructed: parse the children
        children, p = [], 0
        while p < len(body):
            child, p = _parse(body, p, descend)
            children.append(child)
        return Tlv(tag, children=children), end
    return Tlv(tag, contents=body), end


def signed_data_node(ci: Tlv) -> Tlv:
    """ContentInfo -> [0] -> SignedData."""
    assert ci.children is not None and ci.children[1].children is not None
    return ci.children[1].children[0]


def sd_field(sd: Tlv, index: int) -> Tlv:
    assert sd.children is not None
    return sd.children[index]


def signer_info_node(ci: Tlv, n: int = 0) -> Tlv:
    sd = signed_data_node(ci)
    assert sd.children is not None
    infos = sd.children[-1]
    assert infos.children is not None
    return infos.children[n]


# --- re-signing: a SignerInfo whose signed attributes we choose, signed for real by the signer's key -------


def resign(signed: bytes, pki: TestPKI, label: str, attrs: cms.CMSAttributes) -> bytes:
    """The CMS with its first SignerInfo's signed attributes replaced by ``attrs`` and signed again with
    ``label``'s key (ECDSA P-256, as the test PKI issues), so the signature value verifies."""
    info = cms.ContentInfo.load(signed)
    sd = info["content"]
    si = sd["signer_infos"][0]
    key_der = asn1_keys.PrivateKeyInfo.dump(pki.key(label))
    key = serialization.load_der_private_key(key_der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(attrs.dump(force=True), ec.ECDSA(hashes.SHA256()))
    si["signed_attrs"] = attrs
    si["signature"] = signature
    si["unsigned_attrs"] = None  # a timestamp over the old signature value would no longer match
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump(force=True))


def signed_attrs_of(signed: bytes) -> list[cms.CMSAttribute]:
    si = cms.ContentInfo.load(signed)["content"]["signer_infos"][0]
    return [cms.CMSAttribute.load(a.dump()) for a in si["signed_attrs"]]


def add_token_crls(signed: bytes, crls: list[bytes]) -> bytes:
    """CRLs added to the SignedData.crls of the first signer's signature timestamp token (the TSA's own
    validation data; unsigned in the token, so the token and the signature stay valid)."""
    info = cms.ContentInfo.load(signed)
    sd = info["content"]
    si = sd["signer_infos"][0]
    attrs = []
    for attr in si["unsigned_attrs"]:
        if attr["type"].native == "signature_time_stamp_token":
            tokens = []
            for token in attr["values"]:
                with_crls = add_signed_data_revinfo(token.dump(), crls=crls)
                tokens.append(cms.ContentInfo.load(with_crls))
            attr = cms.CMSAttribute({"type": "signature_time_stamp_token", "values": tokens})
        attrs.append(cms.CMSAttribute.load(attr.dump()))
    si["unsigned_attrs"] = cms.CMSAttributes(attrs)
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump(force=True))


def sign_cms_claiming(data: bytes, pki: TestPKI, label: str, signing_time: datetime, detached: bool = True) -> bytes:
    """A B-B CAdES whose signer claims ``signing_time`` (the CMS signingTime attribute, no timestamp)."""
    import asyncio

    from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

    from tests.signature.signing import signer_for

    settings = PdfCMSSignedAttributes(signing_time=signing_time)
    signed = asyncio.run(
        signer_for(pki, label).async_sign_general_data(data, "sha256", detached=detached, signed_attr_settings=settings)
    )
    return bytes(signed.dump())
