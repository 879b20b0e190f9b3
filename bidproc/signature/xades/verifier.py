"""signxml's XAdES verifier, adapted: one signature, our canonicalisation, detached files of the bid only."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, digest_algorithm_implementations
from signxml.exceptions import InvalidDigest, InvalidInput
from signxml.util import _remove_sig
from signxml.xades.xades import XAdESVerifier

from bidproc.signature.xades.c14n import XmlAttributes, ancestor_xml_attributes, canonicalise
from bidproc.signature.xades.timestamps import NS

BASE64 = "http://www.w3.org/2000/09/xmldsig#base64"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"


class SignedDataNotFound(Exception):
    pass


def base64_input(payload: etree._Element, signature: etree._Element, algorithms: set[str | None]) -> etree._Element:
    """What the base64 transform must decode, as an element whose text signxml's transform reads.

    XML-DSig 1.1 §6.6.2 decodes the string value of the node set (all its text, around child nodes too);
    signxml decodes the element's first text node only, leniently (Python stops at the padding), so base64
    appended after a comment or past a "=" was content of the Object that no digest covered. Decoded
    strictly here: the whole text, whitespace aside, in the base64 alphabet with padding only at the end.
    """
    if ENVELOPED in algorithms:
        _remove_sig(signature, idempotent=True)  # type: ignore[no-untyped-call]  # as signxml does first
    text = "".join(str(payload.xpath("string()")).split())
    base64.b64decode(text, validate=True)  # binascii.Error (a ValueError): ambiguous content, a format failure
    stand_in = etree.Element("base64")
    stand_in.text = text
    return stand_in


def resolver(detached: Mapping[str, bytes], used: dict[str, str]) -> Callable[[str], bytes]:
    """Detached references name other files of the bid: match by name, never fetch anything."""
    by_base: dict[str, list[str]] = {}
    for key in detached:
        by_base.setdefault(key.replace("\\", "/").rsplit("/", 1)[-1], []).append(key)

    def resolve(uri: str) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme not in ("", "file") or parts.netloc:
            raise SignedDataNotFound(f"{uri} (remote references are never fetched)")
        path = unquote(parts.path).removeprefix("./")
        candidates = [path] if path in detached else by_base.get(path.rsplit("/", 1)[-1], [])
        if len(candidates) != 1:
            raise SignedDataNotFound(f"{uri}" + (" (ambiguous)" if candidates else ""))
        used[uri] = candidates[0]
        return detached[candidates[0]]

    return resolve


class OneSignature(XAdESVerifier):
    """signxml's verifier, pointed at one signature, checking only the signing certificate's digest, and
    canonicalising with ``xades_c14n``.

    signxml verifies the first ds:Signature it finds; we point it at the one we are validating. It also
    insists that *every* xades:Cert of SigningCertificate(V2) be in KeyInfo, but EN 319 132-1 lets those
    further entries name issuer certificates the KeyInfo does not carry: only the first one, the signing
    certificate, must match (EN 319 102-1 §5.2.3), and it is checked here on the *signed* properties.
    signxml canonicalises copies taken out of the document (the signature for SignedInfo, each referenced
    element), so we note the ``xml:*`` attributes those copies lost and hand them to ``canonicalise``.
    """

    def __init__(self, path: str, uri_resolver: Callable[[str], bytes]) -> None:
        super().__init__()
        self._path = path
        self.uri_resolver = uri_resolver  # detached references: files of the bid (see ``resolver``)
        self._outer: list[XmlAttributes] = []  # above the signature: SignedInfo's lost ancestors
        self._payload_outer: list[XmlAttributes] | None = None  # above a referenced element

    def _get_signature(self, root: etree._Element) -> etree._Element:
        found = root if self._path == "." else root.find(self._path)
        if found is None:
            raise InvalidInput(f"signature not found at {self._path}")
        self._outer = ancestor_xml_attributes(found)
        return found

    def _tostring(self, xml_node: Any, **kwargs: Any) -> Any:
        # signxml copies an element (the signature, a referenced element) by serialising and re-parsing it;
        # lxml serialises the element's tail too, the text that follows it in its parent, which is no part of
        # it: a signed element or a signature followed by text (mixed content) made the copy unparsable, a
        # FORMAT_FAILURE against a valid signature.
        if isinstance(xml_node, etree._Element):
            kwargs.setdefault("with_tail", False)
        return super()._tostring(xml_node, **kwargs)  # type: ignore[no-untyped-call]

    def _apply_transforms(self, payload: Any, *, transforms_node: Any, signature: Any) -> Any:
        self._payload_outer = ancestor_xml_attributes(payload) if isinstance(payload, etree._Element) else []
        transforms = [] if transforms_node is None else transforms_node.findall("ds:Transform", NS)
        algorithms = {t.get("Algorithm") for t in transforms}
        if BASE64 in algorithms and isinstance(payload, etree._Element):
            payload = base64_input(payload, signature, algorithms)
        try:
            return super()._apply_transforms(payload, transforms_node=transforms_node, signature=signature)
        finally:
            self._payload_outer = None

    def _c14n(self, nodes: Any, algorithm: CanonicalizationMethod, inclusive_ns_prefixes: Any = None) -> bytes:
        outer = self._outer if self._payload_outer is None else self._payload_outer
        return b"".join(
            canonicalise(n, algorithm.value, inclusive_ns_prefixes, outer)
            for n in (nodes if isinstance(nodes, list) else [nodes])
        )

    def _verify_cert_digest(
        self, signing_cert_node: etree._Element, certs: list[x509.Certificate], signing_cert: x509.Certificate | None
    ) -> None:
        method = signing_cert_node.find("xades:Cert/xades:CertDigest/ds:DigestMethod", NS)
        value = signing_cert_node.findtext("xades:Cert/xades:CertDigest/ds:DigestValue", None, NS)
        if method is None or value is None:
            raise InvalidInput("xades:SigningCertificate(V2) without a certificate digest")
        algorithm = DigestAlgorithm(method.get("Algorithm"))
        expected = base64.b64decode(value.strip())
        implementation = digest_algorithm_implementations[algorithm]()
        if signing_cert is None or signing_cert.fingerprint(implementation) != expected:
            raise InvalidDigest("Digest mismatch for signing certificate digest")

    def verify_manifest_reference(self, root: etree._Element, reference: etree._Element, cert: x509.Certificate) -> Any:
        """signxml's own reference processing (resolve, transform, canonicalise, digest), for a manifest's."""
        key = cert.public_key()
        return self._verify_reference(reference, 0, root, self.uri_resolver, None, None, key)  # type: ignore[no-untyped-call]
