"""ETSI TS 119 102-2 (v1.4.1) signature validation report, for PAdES, CAdES and XAdES alike.

Modelled on pyhanko's ``sign/validation/report/tools.py`` (PDF only, and built from pyhanko's own
result objects, on the older v1.2.1 namespace); this one is hand-written with lxml because it works
from bidproc's :class:`SignatureReport`, whatever the format. What the report cannot state from
bidproc's data it leaves out (every element used here is optional in the schema unless noted), and
bidproc's own findings (format, level, modifications, the French rule, warnings) go in
``OtherInformation`` under our namespace, which the schema admits (``processContents="lax"``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from bidproc.signature.report import Indication, Level, Qualification, RuleOutcome, SignatureReport, TimestampInfo
from bidproc.signature.reports.subject import Subject

VR = "http://uri.etsi.org/19102/v1.4.1#"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
BP = "urn:bidproc:validation-report:1"
NSMAP = {"vr": VR, "ds": DS, "XAdES": XADES, "bp": BP}
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"

MAIN = {
    Indication.TOTAL_PASSED: "urn:etsi:019102:mainindication:total-passed",
    Indication.TOTAL_FAILED: "urn:etsi:019102:mainindication:total-failed",
    Indication.INDETERMINATE: "urn:etsi:019102:mainindication:indeterminate",
}
SUB_PREFIX = "urn:etsi:019102:subindication:"
# The process bidproc runs per level (pades.py / cades.py / xades.py pick the EN 319 102-1 process
# the same way): B-B basic, B-T and B-LT validation with time, B-LTA long-term with archival data.
PROCESS = {
    Level.B_B: "urn:etsi:019102:validationprocess:Basic",
    Level.B_T: "urn:etsi:019102:validationprocess:LTVM",
    Level.B_LT: "urn:etsi:019102:validationprocess:LTVM",
    Level.B_LTA: "urn:etsi:019102:validationprocess:LTA",
}
# TS 119 102-2 leaves the quality URIs to TS 119 172-4; these are the ones the EU's DSS validator
# writes in its ETSI reports, so tools that read DSS reports read ours.
QUALITY_PREFIX = "urn:cef:dss:signatureQualification:"
VO_CERTIFICATE = "urn:etsi:019102:validationObject:certificate"
VO_SIGNED_DATA = "urn:etsi:019102:validationObject:signedData"
POE_VALIDATION = "urn:etsi:019102:poetype:validation"
POE_PROVIDED = "urn:etsi:019102:poetype:provided"
TIMESTAMP_ELEMENT = {
    "signature": ("SignatureTimeStamp", False),
    "content": ("AllDataObjectsTimeStamp", True),
    "archive": ("ArchiveTimeStamp", False),
    "document": ("DocTimeStamp", False),
}
_SHA256 = re.compile(r"sha256=([0-9a-f]{64})")
SIGNATURE_MACHINERY = ("signed-properties:", "key-info:")
FRENCH_POINTS = ("format", "certificate_valid_at_signing_time", "integrity", "signer_identity", "certificate_category")


def _xml_time(t: datetime) -> str:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


# Characters XML 1.0 cannot carry: a certificate or file name may hold them (hostile input).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _el(parent: Any, ns: str, tag: str, text: str | None = None, /, **attrs: str) -> Any:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def _digest(parent: Any, name: str, hex_digest: str) -> None:
    box = _el(parent, VR, name)
    _el(box, DS, "DigestMethod", Algorithm=SHA256_URI)
    _el(box, DS, "DigestValue", _b64(hex_digest))


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class _Objects:
    """The report's ``SignatureValidationObjects``: what ``VOReference`` attributes point at."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, bytes | None]] = []  # (id, object type, sha256 hex, DER)

    def add(self, kind: str, sha256: str, der: bytes | None = None) -> str:
        for vo_id, k, digest, _ in self.items:
            if k == kind and digest == sha256:
                return vo_id
        vo_id = f"vo-{len(self.items) + 1}"
        self.items.append((vo_id, kind, sha256, der))
        return vo_id

    def write(self, root: Any) -> None:
        if not self.items:
            return
        box = _el(root, VR, "SignatureValidationObjects")
        for vo_id, kind, digest, der in self.items:
            vo = _el(box, VR, "ValidationObject", id=vo_id)
            _el(vo, VR, "ObjectType", kind)
            rep = _el(vo, VR, "ValidationObjectRepresentation")
            if der is not None:  # the certificate itself, where validation handed it over
                _el(rep, VR, "base64", base64.b64encode(der).decode())
            _digest(rep, "DigestAlgAndValue", digest)


def _signer_certificate(sig: SignatureReport, objects: _Objects) -> str | None:
    """The VO id of the signer's certificate, with its DER where the report carries it."""
    if sig.signer is None:
        return None
    der = getattr(sig.signer, "certificate_der", None)  # added by the trusted-lists work
    if isinstance(der, bytes):
        return objects.add(VO_CERTIFICATE, hashlib.sha256(der).hexdigest(), der)
    if sig.signer.certificate_sha256:
        return objects.add(VO_CERTIFICATE, sig.signer.certificate_sha256)
    return None


def _signed_digests(sig: SignatureReport, subject: Subject) -> list[str]:
    """SHA-256 digests of what the signature signs, where bidproc knows them exactly."""
    digests: list[str] = []
    for entry in sig.signed_data:
        if entry.startswith(SIGNATURE_MACHINERY):
            continue  # XAdES signs its own properties and key info too: not the signer's document
        found = _SHA256.search(entry)
        if found:  # XAdES references: the digest of the referenced data as verified
            digests.append(found.group(1))
        elif (doc := subject.detached_named(entry)) is not None:  # CAdES detached data
            digests.append(doc.sha256)
        elif subject.enveloped is not None and entry == subject.document.name:  # CAdES enveloping (.p7m)
            digests.append(subject.enveloped.sha256)
    return digests


def _best_time(parent: Any, sig: SignatureReport, validation_time: datetime) -> None:
    info = _el(parent, VR, "ValidationTimeInfo")
    _el(info, VR, "ValidationTime", _xml_time(validation_time))
    poe = _el(info, VR, "BestSignatureTime")
    best = sig.best_signature_time or validation_time
    deposit = any(t.kind == "deposit" and t.time == best for t in sig.timestamps)
    _el(poe, VR, "POETime", _xml_time(best))
    _el(poe, VR, "TypeOfProof", POE_PROVIDED if deposit else POE_VALIDATION)


def _attributes(parent: Any, sig: SignatureReport) -> None:
    stamps: list[tuple[str, bool, TimestampInfo]] = []
    for t in sig.timestamps:
        if t.kind in TIMESTAMP_ELEMENT:
            name, signed = TIMESTAMP_ELEMENT[t.kind]
            if sig.format.value == "PAdES" and t.kind == "archive":
                name = "DocTimeStamp"  # PAdES archives with document timestamps
            stamps.append((name, signed, t))
    if sig.signing_time is None and not stamps:
        return  # the schema wants at least one attribute inside SignatureAttributes
    attrs = _el(parent, VR, "SignatureAttributes")
    if sig.signing_time is not None:
        st = _el(attrs, VR, "SigningTime", Signed="true")
        _el(st, VR, "Time", _xml_time(sig.signing_time))
    for name, signed, t in stamps:
        el = _el(attrs, VR, name, Signed="true" if signed else "false")
        _el(el, VR, "TimeStampValue", _xml_time(t.time))


def _other(parent: Any, sig: SignatureReport, problems: tuple[str, ...]) -> None:
    other = _el(parent, VR, "OtherInformation")
    _el(other, BP, "File", sig.file)
    _el(other, BP, "Format", sig.format.value)
    if sig.level is not None:
        _el(other, BP, "Level", sig.level.value)
    _el(other, BP, "Qualification", sig.qualification.value)
    for t in sig.timestamps:
        stamp = _el(other, BP, "Timestamp", t.detail or "", kind=t.kind, time=_xml_time(t.time))
        stamp.set("valid", str(t.valid).lower())
        qualified = getattr(t, "qualified", None)  # set where the trusted lists were consulted
        if isinstance(qualified, bool):
            stamp.set("qualified", str(qualified).lower())
    for m in sig.modifications:
        _el(other, BP, "Modification", m.detail, revision=str(m.revision), kind=m.kind, allowed=str(m.allowed).lower())
    if sig.french_rule is not None:
        fr = sig.french_rule
        every_point = all(getattr(fr, p) is RuleOutcome.PASSED for p in FRENCH_POINTS)
        rule = _el(other, BP, "FrenchRule", compliant=str(every_point and not fr.failed).lower())
        for point in FRENCH_POINTS:
            _el(rule, BP, "Point", name=point, outcome=getattr(fr, point).value)
    for kind, items in (("SignedData", sig.signed_data), ("Warning", sig.warnings), ("Error", sig.errors)):
        for item in items:
            _el(other, BP, kind, item)
    for p in problems:
        _el(other, BP, "FileProblem", p)


def _signature(root: Any, n: int, sig: SignatureReport, subject: Subject, objects: _Objects) -> None:
    svr = _el(root, VR, "SignatureValidationReport")
    ident = _el(svr, VR, "SignatureIdentifier", id=f"sig-{n}")
    _el(ident, VR, "HashOnly", "false")
    _el(ident, VR, "DocHashOnly", "false")
    if sig.signature_id:
        _el(ident, VR, "DAIdentifier", sig.signature_id)
    _best_time(svr, sig, subject.validation_time)
    digests = _signed_digests(sig, subject)
    if digests:
        doc = _el(svr, VR, "SignersDocument")
        _digest(doc, "DigestAlgAndValue", digests[0])
        refs = " ".join(objects.add(VO_SIGNED_DATA, d) for d in digests)
        _el(doc, VR, "SignersDocumentRepresentation", VOReference=refs)
    _attributes(svr, sig)
    cert_ref = _signer_certificate(sig, objects)
    if sig.signer is not None and cert_ref is not None:
        info = _el(svr, VR, "SignerInformation")
        _el(info, VR, "SignerCertificate", VOReference=cert_ref)
        _el(info, VR, "Signer", sig.signer.subject)
    if sig.qualification is not Qualification.NA:
        quality = _el(svr, VR, "SignatureQuality")
        _el(quality, VR, "SignatureQualityInformation", QUALITY_PREFIX + sig.qualification.value)
    process = PROCESS.get(sig.level) if sig.level is not None else None
    if process is not None:
        _el(_el(svr, VR, "SignatureValidationProcess"), VR, "SignatureValidationProcessID", process)
    status = _el(svr, VR, "SignatureValidationStatus")
    _el(status, VR, "MainIndication", MAIN[sig.indication])
    if sig.subindication is not None:
        _el(status, VR, "SubIndication", SUB_PREFIX + sig.subindication.value)
    if cert_ref is not None:
        chain = _el(_el(status, VR, "AssociatedValidationReportData"), VR, "CertificateChain")
        _el(chain, VR, "SigningCertificate", VOReference=cert_ref)
    _other(svr, sig, subject.report.problems)


def _no_signature(root: Any, subject: Subject) -> None:
    """A file with no readable signature: the schema needs one report; it says FORMAT_FAILURE."""
    svr = _el(root, VR, "SignatureValidationReport")
    status = _el(svr, VR, "SignatureValidationStatus")
    _el(status, VR, "MainIndication", MAIN[Indication.TOTAL_FAILED])
    _el(status, VR, "SubIndication", SUB_PREFIX + "FORMAT_FAILURE")
    other = _el(svr, VR, "OtherInformation")
    _el(other, BP, "File", subject.report.subject)
    for p in subject.report.problems or ("no signature found",):
        _el(other, BP, "FileProblem", p)


def render_xml(subject: Subject) -> bytes:
    """The TS 119 102-2 ``ValidationReport`` for every signature of ``subject``, UTF-8 XML."""
    root = etree.Element(f"{{{VR}}}ValidationReport", nsmap=NSMAP)
    objects = _Objects()
    for n, sig in enumerate(subject.report.signatures, start=1):
        _signature(root, n, sig, subject, objects)
    if not subject.report.signatures:
        _no_signature(root, subject)
    objects.write(root)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out
