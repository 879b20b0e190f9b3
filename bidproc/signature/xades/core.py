"""XML-DSig core validation of one XAdES signature, and what it really signs (see ``xades.py``).

signxml's ``XAdESVerifier`` checks SignatureValue over SignedInfo, every Reference digest and the signing
certificate digest. Around it, hand-written: pointing it at one signature, canonicalising with C14N 1.0 or
1.1 as asked (``xades_c14n``; signxml renders 1.1 as 1.0 and drops inherited ``xml:*`` attributes),
checking that the signed SignedProperties are this signature's, verifying the ds:Manifest references it
signs and that its own ds:Objects carry no unsigned content (``xades_manifest``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature, SignXMLException
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESVerifyResult

from bidproc.errors import Warning_
from bidproc.signature.report import Indication, SubIndication
from bidproc.signature.xades.archive import ReferenceData
from bidproc.signature.xades.checks import Failure, Parts
from bidproc.signature.xades.manifest import (
    DS_MANIFEST,
    Covered,
    TooManyManifestReferences,
    covered_by,
    manifest_references,
    signed_manifests,
    uncovered_objects,
)
from bidproc.signature.xades.timestamps import C14N_METHODS, NS
from bidproc.signature.xades.verifier import OneSignature, SignedDataNotFound, resolver
from bidproc.signature.xades.xml_safety import safe_parser

_BY_ID = "//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $v]"
SUPPORTED_TRANSFORMS = {
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2000/09/xmldsig#base64",
    *C14N_METHODS,
}
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"
XADES_SIGNED_PROPERTIES = f"{{{NS['xades']}}}SignedProperties"
DS_OBJECT = f"{{{NS['ds']}}}Object"
DS_SIGNATURE = f"{{{NS['ds']}}}Signature"
DS_KEY_INFO = f"{{{NS['ds']}}}KeyInfo"


@dataclass(frozen=True)
class Core:
    failure: Failure | None
    signed_data: tuple[str, ...] = ()
    signing_time: datetime | None = None
    # what each ds:Reference digested, in SignedInfo order (the archive timestamp's input starts with it)
    references: tuple[ReferenceData, ...] = ()
    # the elements of the file that verified references (SignedInfo's and manifests') cover
    covered: tuple[Covered, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def _not_found(why: str, signed: list[str] | tuple[str, ...], warnings: tuple[str, ...] = ()) -> Core:
    return Core((Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND, why), tuple(signed), warnings=warnings)


def verify_core(
    tree: etree._ElementTree, data: bytes, parts: Parts, cert: x509.Certificate, detached: Mapping[str, bytes]
) -> Core:
    """signxml: SignatureValue, every Reference digest, SigningCertificate(V2); then what was signed."""
    used: dict[str, str] = {}
    declared = tuple(f"declared:{r.get('URI')}" for r in parts.signature.findall("ds:SignedInfo/ds:Reference", NS))
    misplaced = _misdirected_reference(tree, parts)
    if misplaced is not None:  # structural, before any computation: no transform or signature value saves it
        return _not_found(misplaced, declared)
    transforms = {t.get("Algorithm") for t in parts.signature.findall("ds:SignedInfo/ds:Reference/ds:Transforms/*", NS)}
    if transforms - SUPPORTED_TRANSFORMS:
        # signxml silently skips transforms it does not know (XPath, XPath Filter 2, XSLT) and would then report a
        # digest mismatch; say instead that we could not compute what was signed.
        why = f"unsupported Reference transforms {sorted(str(t) for t in transforms - SUPPORTED_TRANSFORMS)}"
        return Core((Indication.INDETERMINATE, SubIndication.GENERIC, why), declared)
    # verification_time inside the certificate's validity: signxml must not judge validity periods, the
    # EN 319 102-1 time logic (POE, expiry, revocation) does, with pyhanko-certvalidator. A node set left by a
    # reference's transforms becomes octets with Canonical XML 1.0 (XML-DSig 1.1 §4.4.3.2; signxml says 1.1).
    config = XAdESSignatureConfiguration(
        expect_references=True,
        verification_time=cert.not_valid_before_utc,
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
    )
    verifier = OneSignature(tree.getelementpath(parts.signature), resolver(detached, used))
    try:
        results = verifier.verify(
            data, x509_cert=cert, parser=safe_parser(), uri_resolver=verifier.uri_resolver, expect_config=config
        )
        return _what_was_signed(tree, parts, results, used, detached, verifier, cert)
    except SignedDataNotFound as exc:
        return _not_found(f"signed data not in the bid: {exc}", declared)
    except InvalidDigest as exc:
        if "certificate" in str(exc):
            return Core((Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND, str(exc)), declared)
        return Core((Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE, str(exc)), declared)
    except InvalidSignature as exc:
        return Core(
            (Indication.TOTAL_FAILED, SubIndication.SIG_CRYPTO_FAILURE, str(exc) or "SignatureValue does not verify"),
            declared,
        )
    except InvalidInput as exc:
        if "forbidden by configuration" in str(exc):
            return Core((Indication.INDETERMINATE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE, str(exc)), declared)
        if "Unable to resolve reference" in str(exc):
            return _not_found(str(exc), declared)
        if "Expected to find a xades:SignedProperties element" in str(exc):
            return _not_found("no signed reference designates this signature's xades:SignedProperties", declared)
        return Core((Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, str(exc)), declared)
    except (SignXMLException, etree.LxmlError, ValueError, KeyError) as exc:  # schema, unknown algorithms, ...
        return Core((Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, f"{type(exc).__name__}: {exc}"), declared)


def _misdirected_reference(tree: etree._ElementTree, parts: Parts) -> str | None:
    """Why a SignedInfo reference designates something other than what it must (signature wrapping), or None.

    - the signature's SignedProperties (those of the QualifyingProperties targeting it, which this validator
      reads) must be designated by exactly one reference, and no reference may designate another
      SignedProperties or be typed SignedProperties while designating something else;
    - a reference designating a ds:Object must find it where XML-DSig puts it, a child of a ds:Signature, not
      hidden inside other content where a reader of the signature's Objects would never look.
    """
    own = 0
    for reference in parts.signature.findall("ds:SignedInfo/ds:Reference", NS):
        uri = reference.get("URI") or ""
        found = tree.xpath(_BY_ID, v=uri[1:]) if uri.startswith("#") else []
        target = found[0] if len(found) == 1 else None
        if target is parts.signed_properties:
            own += 1
            continue
        typed = reference.get("Type") == SIGNED_PROPERTIES_TYPE
        if typed or (target is not None and target.tag == XADES_SIGNED_PROPERTIES):
            what = f"<{etree.QName(target).localname}>" if target is not None else "nothing"
            return f"reference {uri or '(no URI)'} signs {what}, not this signature's xades:SignedProperties"
        parent = target.getparent() if target is not None else None
        if target is not None and target.tag == DS_OBJECT and (parent is None or parent.tag != DS_SIGNATURE):
            where = etree.QName(parent).localname if parent is not None else "nothing"
            return f"reference {uri} designates a ds:Object hidden inside <{where}>, not a ds:Object of a signature"
    if own != 1:
        return "this signature's xades:SignedProperties are not signed exactly once"
    return None


def _describe(kind: str, uri: str, target: etree._Element, digested: bytes) -> str:
    name = etree.QName(target).localname
    return f"{kind}:{uri or '(whole document)'} <{name}> sha256={hashlib.sha256(digested).hexdigest()}"


def _only_manifests(target: etree._Element) -> bool:
    """A ds:Manifest, or an element holding nothing but manifests: what it signs is the manifests' business."""
    if target.tag == DS_MANIFEST:
        return True
    children = [c for c in target if isinstance(c.tag, str)]
    texts = [target.text, *(c.tail for c in target)]
    return bool(children) and all(c.tag == DS_MANIFEST for c in children) and not any(t and t.strip() for t in texts)


def _signature_machinery(target: etree._Element, parts: Parts) -> bool:
    """The signature's own parts, which sign no document: its qualifying properties or a KeyInfo, anything
    inside them (an X509Data), and a ds:Object that holds nothing but the qualifying properties."""
    qualifying = parts.qualifying_properties
    inside = [target, *target.iterancestors()]
    if any(a is qualifying or a.tag == DS_KEY_INFO for a in inside):
        return True
    children = [c for c in target if isinstance(c.tag, str)]
    texts = [target.text, *(c.tail for c in target)]
    return target.tag == DS_OBJECT and children == [qualifying] and not any(t and t.strip() for t in texts)


def _what_was_signed(
    tree: etree._ElementTree,
    parts: Parts,
    results: Any,
    used: dict[str, str],
    detached: Mapping[str, bytes],
    verifier: OneSignature,
    cert: x509.Certificate,
) -> Core:
    references = parts.signature.findall("ds:SignedInfo/ds:Reference", NS)
    signed: list[str] = []
    covered: list[Covered] = []
    properties: list[Any] = []
    data_refs = 0
    for reference, result in zip(references, results, strict=True):
        uri = reference.get("URI", "")
        if uri in used:
            signed.append(f"file:{used[uri]} sha256={hashlib.sha256(detached[used[uri]]).hexdigest()}")
            data_refs += 1
            continue
        target = tree.getroot() if uri == "" else tree.xpath(_BY_ID, v=uri[1:])[0]
        assert isinstance(target, etree._Element)
        if target is parts.signed_properties:
            signed.append(_describe("signed-properties", uri, target, result.signed_data))
            properties.append(result)
            continue
        if reference.get("Type") == SIGNED_PROPERTIES_TYPE or target.tag == XADES_SIGNED_PROPERTIES:
            # A decoy: the properties a reader (and this validator) takes as the signature's are elsewhere.
            name = etree.QName(target).localname
            why = f"reference {uri} signs a <{name}> that is not this signature's xades:SignedProperties"
            return _not_found(why, signed)
        if target.tag == f"{{{NS['ds']}}}KeyInfo":
            signed.append(_describe("key-info", uri, target, result.signed_data))
            continue
        manifests_only = _only_manifests(target)
        kind = "manifest" if manifests_only else ("document" if uri == "" else "element")
        signed.append(_describe(kind, uri, target, result.signed_data))
        covered.append(covered_by(reference, target, parts.signature))
        data_refs += 0 if manifests_only or _signature_machinery(target, parts) else 1
    if len(properties) != 1 or not isinstance(properties[0], XAdESVerifyResult):
        return _not_found("this signature's xades:SignedProperties are not signed exactly once", signed)

    # ds:Manifest references: not part of XML-DSig core validation, verified here (see xades_manifest).
    checked = _manifest_entries(tree, parts, covered, signed, used, detached, verifier, cert)
    if isinstance(checked, Core):
        return checked
    data_refs += checked
    if data_refs == 0:
        return _not_found("the signature signs no data object (only its properties or an empty manifest)", signed)
    unsigned = uncovered_objects(parts.signature, covered)
    if unsigned:
        warning = f"{Warning_.XML_PARTIALLY_SIGNED.value}: not covered by this signature: {', '.join(unsigned)}"
        why = f"content inside the signature is not what it signs: {', '.join(unsigned)} not covered"
        return _not_found(why, signed, (warning,))
    when = properties[0].signed_properties.findtext("xades:SigningTime", None, NS)
    digested = tuple(
        ReferenceData(r.get("URI", ""), bytes(result.signed_data), r.get("URI", "") in used)
        for r, result in zip(references, results, strict=True)
    )
    return Core(None, tuple(signed), _parse_time(when), digested, tuple(covered))


def _parse_time(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _manifest_entries(
    tree: etree._ElementTree,
    parts: Parts,
    covered: list[Covered],
    signed: list[str],
    used: dict[str, str],
    detached: Mapping[str, bytes],
    verifier: OneSignature,
    cert: x509.Certificate,
) -> Core | int:
    """Verify the references of the signed ds:Manifests, adding what they cover to ``covered`` and
    ``signed``: the failure, or how many data objects they sign."""
    root = tree.getroot()
    data_refs = 0
    try:
        entries = manifest_references(signed_manifests(covered, parts.signature))
    except TooManyManifestReferences as exc:
        return Core((Indication.INDETERMINATE, SubIndication.GENERIC, str(exc)), tuple(signed))
    for entry in entries:
        uri = entry.get("URI")
        algorithms = {t.get("Algorithm") for t in entry.findall("ds:Transforms/ds:Transform", NS)}
        if uri is None or algorithms - SUPPORTED_TRANSFORMS:
            why = f"manifest reference {uri}: no URI or unsupported transforms {sorted(map(str, algorithms))}"
            return Core((Indication.INDETERMINATE, SubIndication.GENERIC, why), tuple(signed))
        try:
            result = verifier.verify_manifest_reference(root, entry, cert)
        except SignedDataNotFound as exc:
            return _not_found(f"manifest reference: signed data not in the bid: {exc}", signed)
        except InvalidDigest:
            why = f"manifest reference {uri}: digest mismatch (the data it names changed after signing)"
            return Core((Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE, why), tuple(signed))
        except InvalidInput as exc:
            if "Unable to resolve reference" in str(exc) or "External URI" in str(exc):
                return _not_found(f"manifest reference {uri} designates nothing in the file: {exc}", signed)
            return Core((Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, f"manifest: {exc}"), tuple(signed))
        data_refs += 1
        if uri in used:
            signed.append(f"manifest-file:{used[uri]} sha256={hashlib.sha256(detached[used[uri]]).hexdigest()}")
            continue
        target = root if uri == "" else tree.xpath(_BY_ID, v=uri[1:])[0]
        signed.append(_describe("manifest-entry", uri, target, result.signed_data))
        covered.append(covered_by(entry, target, parts.signature))
        if _signature_machinery(target, parts):
            data_refs -= 1  # the signature's own properties or key are no document
    return data_refs
