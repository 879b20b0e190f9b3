"""The building blocks of XAdES validation (see ``xades.py`` for who does what and why)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # no stubs in the venv
from signxml.algorithms import DigestAlgorithm, digest_algorithm_implementations
from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature, SignXMLException
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESVerifier, XAdESVerifyResult

from bidproc.signature.report import (
    FrenchRuleCheck,
    Indication,
    RuleOutcome,
    SignatureFormat,
    SignatureReport,
    Signer,
    SubIndication,
)
from bidproc.signature.xades_archive import ReferenceData
from bidproc.signature.xades_timestamp import C14N_METHODS, NS
from bidproc.signature.xml_safety import safe_parser

Failure = tuple[Indication, SubIndication, str]
INTEGRITY_FAILURES = {SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE}
_BY_ID = "//*[@*[local-name()='Id' or local-name()='ID' or local-name()='id'] = $v]"
SUPPORTED_TRANSFORMS = {
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2000/09/xmldsig#base64",
    *C14N_METHODS,
}


def signer_of(cert: x509.Certificate) -> Signer:
    def attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None

    return Signer(
        subject=cert.subject.rfc4514_string(),
        common_name=attr(cert.subject, NameOID.COMMON_NAME),
        organisation=attr(cert.subject, NameOID.ORGANIZATION_NAME),
        serial_number=attr(cert.subject, NameOID.SERIAL_NUMBER),
        issuer=cert.issuer.rfc4514_string(),
        certificate_sha256=cert.fingerprint(digest_algorithm_implementations[DigestAlgorithm.SHA256]()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def french(fmt: RuleOutcome, integrity: RuleOutcome, cert_valid: RuleOutcome, signer: Signer | None) -> FrenchRuleCheck:
    """Arrêté of 22 March 2019 points; the certificate category waits for the trusted-lists issue."""
    identity = RuleOutcome.PASSED if signer and (signer.common_name or signer.organisation) else RuleOutcome.FAILED
    points = {
        "format": fmt,
        "certificate_valid_at_signing_time": cert_valid,
        "integrity": integrity,
        "signer_identity": identity,
    }
    return FrenchRuleCheck(**points, failed=tuple(k for k, v in points.items() if v is RuleOutcome.FAILED))


def verdict(
    name: str, sig_id: str | None, indication: Indication, sub: SubIndication | None, **fields: Any
) -> SignatureReport:
    return SignatureReport(
        file=name,
        format=SignatureFormat.XADES,
        indication=indication,
        subindication=sub,
        signature_id=sig_id,
        french_rule=fields.pop("french"),
        **fields,
    )


def format_failure(name: str, sig_id: str | None, reason: str) -> SignatureReport:
    no = RuleOutcome.NOT_CHECKED
    return verdict(
        name,
        sig_id,
        Indication.TOTAL_FAILED,
        SubIndication.FORMAT_FAILURE,
        errors=(reason,),
        french=french(RuleOutcome.FAILED, no, no, None),
    )


def internal_error(name: str, sig_id: str | None, exc: Exception) -> SignatureReport:
    """Not the signature's fault, as far as we know: INDETERMINATE, never a verdict against the bidder."""
    no = RuleOutcome.NOT_CHECKED
    return verdict(
        name,
        sig_id,
        Indication.INDETERMINATE,
        SubIndication.GENERIC,
        errors=(f"internal error during validation: {type(exc).__name__}: {exc}",),
        french=FrenchRuleCheck(format=no, certificate_valid_at_signing_time=no, integrity=no, signer_identity=no),
    )


@dataclass(frozen=True)
class Parts:
    signature: etree._Element
    qualifying_properties: etree._Element
    signed_properties: etree._Element


def locate_parts(signature: etree._Element) -> Parts | str:
    """The QualifyingProperties that target this signature (EN 319 132-1 §4.3), or why there are none."""
    sig_id = signature.get("Id")
    if not sig_id:
        return "ds:Signature has no Id, so no XAdES QualifyingProperties can target it"
    found = [
        q for q in signature.findall("ds:Object/xades:QualifyingProperties", NS) if q.get("Target") == f"#{sig_id}"
    ]
    if len(found) != 1:
        return f"expected one xades:QualifyingProperties (v1.3.2 namespace) targeting #{sig_id}, found {len(found)}"
    signed = found[0].findall("xades:SignedProperties", NS)
    if len(signed) != 1:
        return "expected exactly one xades:SignedProperties"
    return Parts(signature, found[0], signed[0])


def identify_signing_certificate(
    parts: Parts, known: tuple[bytes, ...] = ()
) -> tuple[x509.Certificate | None, list[x509.Certificate]]:
    """EN 319 102-1 §5.2.3: the certificate whose digest xades:SigningCertificate(V2) names first.

    Looked for in KeyInfo, then among ``known`` certificates (the policy's extra certificates): a signature
    may leave its certificate out of KeyInfo and identify it by digest only.
    """
    certs = [x509.load_der_x509_certificate(der) for der in known]
    for node in parts.signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()))))
        except ValueError:
            continue
    ssp = parts.signed_properties.find("xades:SignedSignatureProperties", NS)
    refs = [] if ssp is None else ssp.findall("xades:SigningCertificateV2/xades:Cert/xades:CertDigest", NS)
    refs = refs or ([] if ssp is None else ssp.findall("xades:SigningCertificate/xades:Cert/xades:CertDigest", NS))
    if not refs:
        return None, certs
    try:
        algorithm = DigestAlgorithm(refs[0].find("ds:DigestMethod", NS).get("Algorithm"))
        expected = base64.b64decode(refs[0].findtext("ds:DigestValue", "", NS).strip())
    except (ValueError, AttributeError):
        return None, certs
    implementation = digest_algorithm_implementations[algorithm]()
    return next((c for c in certs if c.fingerprint(implementation) == expected), None), certs


class _SignedDataNotFound(Exception):
    pass


def _resolver(detached: Mapping[str, bytes], used: dict[str, str]) -> Callable[[str], bytes]:
    """Detached references name other files of the bid: match by name, never fetch anything."""
    by_base: dict[str, list[str]] = {}
    for key in detached:
        by_base.setdefault(key.replace("\\", "/").rsplit("/", 1)[-1], []).append(key)

    def resolve(uri: str) -> bytes:
        parts = urlsplit(uri)
        if parts.scheme not in ("", "file") or parts.netloc:
            raise _SignedDataNotFound(f"{uri} (remote references are never fetched)")
        path = unquote(parts.path).removeprefix("./")
        candidates = [path] if path in detached else by_base.get(path.rsplit("/", 1)[-1], [])
        if len(candidates) != 1:
            raise _SignedDataNotFound(f"{uri}" + (" (ambiguous)" if candidates else ""))
        used[uri] = candidates[0]
        return detached[candidates[0]]

    return resolve


class _OneSignature(XAdESVerifier):
    """signxml's verifier, pointed at one signature and checking only the signing certificate's digest.

    signxml verifies the first ds:Signature it finds; we point it at the one we are validating. It also
    insists that *every* xades:Cert of SigningCertificate(V2) be in KeyInfo, but EN 319 132-1 lets those
    further entries name issuer certificates the KeyInfo does not carry: only the first one, the signing
    certificate, must match (EN 319 102-1 §5.2.3), and it is checked here on the *signed* properties.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def _get_signature(self, root: etree._Element) -> etree._Element:
        found = root if self._path == "." else root.find(self._path)
        if found is None:
            raise InvalidInput(f"signature not found at {self._path}")
        return found

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


@dataclass(frozen=True)
class Core:
    failure: Failure | None
    signed_data: tuple[str, ...] = ()
    signing_time: datetime | None = None
    # what each ds:Reference digested, in SignedInfo order (the archive timestamp's input starts with it)
    references: tuple[ReferenceData, ...] = ()


def verify_core(
    tree: etree._ElementTree, data: bytes, parts: Parts, cert: x509.Certificate, detached: Mapping[str, bytes]
) -> Core:
    """signxml: SignatureValue, every Reference digest, SigningCertificate(V2); then what was signed."""
    used: dict[str, str] = {}
    declared = tuple(f"declared:{r.get('URI')}" for r in parts.signature.findall("ds:SignedInfo/ds:Reference", NS))
    transforms = {t.get("Algorithm") for t in parts.signature.findall("ds:SignedInfo/ds:Reference/ds:Transforms/*", NS)}
    if transforms - SUPPORTED_TRANSFORMS:
        # signxml silently skips transforms it does not know (XPath, XPath Filter 2, XSLT) and would then report a
        # digest mismatch; say instead that we could not compute what was signed.
        why = f"unsupported Reference transforms {sorted(str(t) for t in transforms - SUPPORTED_TRANSFORMS)}"
        return Core((Indication.INDETERMINATE, SubIndication.GENERIC, why), declared)
    # verification_time inside the certificate's validity: signxml must not judge validity periods, the
    # EN 319 102-1 time logic (POE, expiry, revocation) does, with pyhanko-certvalidator.
    config = XAdESSignatureConfiguration(expect_references=True, verification_time=cert.not_valid_before_utc)
    try:
        results = _OneSignature(tree.getelementpath(parts.signature)).verify(
            data, x509_cert=cert, parser=safe_parser(), uri_resolver=_resolver(detached, used), expect_config=config
        )
    except _SignedDataNotFound as exc:
        return Core(
            (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND, f"signed data not in the bid: {exc}"),
            declared,
        )
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
            return Core((Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND, str(exc)), declared)
        return Core((Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, str(exc)), declared)
    except (SignXMLException, etree.LxmlError, ValueError, KeyError) as exc:  # schema, unknown algorithms, ...
        return Core((Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, f"{type(exc).__name__}: {exc}"), declared)
    return _what_was_signed(tree, parts, results, used, detached)


def _what_was_signed(
    tree: etree._ElementTree, parts: Parts, results: Any, used: dict[str, str], detached: Mapping[str, bytes]
) -> Core:
    references = parts.signature.findall("ds:SignedInfo/ds:Reference", NS)
    signed: list[str] = []
    properties: list[XAdESVerifyResult] = []
    data_refs = 0
    for reference, result in zip(references, results, strict=True):
        uri = reference.get("URI", "")
        digest = hashlib.sha256(result.signed_data).hexdigest()
        if uri in used:
            signed.append(f"file:{used[uri]} sha256={hashlib.sha256(detached[used[uri]]).hexdigest()}")
            data_refs += 1
            continue
        target = tree.getroot() if uri == "" else tree.xpath(_BY_ID, v=uri[1:])[0]
        assert isinstance(target, etree._Element)
        if target is parts.signed_properties:
            kind = "signed-properties"
        elif target.tag == f"{{{NS['ds']}}}KeyInfo":
            kind = "key-info"
        else:
            kind, data_refs = ("document" if uri == "" else "element"), data_refs + 1
        signed.append(f"{kind}:{uri or '(whole document)'} <{etree.QName(target).localname}> sha256={digest}")
        if isinstance(result, XAdESVerifyResult):
            if target is not parts.signed_properties:
                return Core(
                    (
                        Indication.TOTAL_FAILED,
                        SubIndication.FORMAT_FAILURE,
                        "the signed xades:SignedProperties are not this signature's",
                    ),
                    tuple(signed),
                )
            properties.append(result)
    if len(properties) != 1 or data_refs == 0:
        return Core(
            (
                Indication.TOTAL_FAILED,
                SubIndication.FORMAT_FAILURE,
                "a XAdES signature must sign its SignedProperties once and at least one data object",
            ),
            tuple(signed),
        )
    when = properties[0].signed_properties.findtext("xades:SigningTime", None, NS)
    digested = tuple(
        ReferenceData(r.get("URI", ""), bytes(result.signed_data), r.get("URI", "") in used)
        for r, result in zip(references, results, strict=True)
    )
    return Core(None, tuple(signed), _parse_time(when), digested)


def _parse_time(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
