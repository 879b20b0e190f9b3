"""Signed files of every kind the reports must describe, validated once per session.

PAdES from the certomancer test PKI (tests.pki), CAdES from the same, XAdES from the XAdES loopback
PKI (tests.xades.pki): passed, failed, indeterminate, and a PDF changed after signing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import ValidationReport
from bidproc.signature.reports import Subject
from bidproc.signature.validate import validate_file
from tests.pki import TestPKI
from tests.signature.signing import flip_signed_byte, make_pdf, sign_cms, sign_pdf, tamper_incremental
from tests.xades.pki import LoopbackPKI
from tests.xades.signing import add_signature_timestamp, sign_detached


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    detached: dict[str, bytes] = field(default_factory=dict)
    anchors: tuple[bytes, ...] = ()

    def validate(self) -> Subject:
        policy = ValidationPolicy(trust_anchors=self.anchors, fetch_timeout_seconds=5)
        now = datetime.now(UTC)
        report: ValidationReport = validate_file(self.name, self.data, policy, self.detached)
        return Subject.of(report, self.data, now, self.detached)


def pades_samples(pki: TestPKI) -> dict[str, Sample]:
    pdf = make_pdf()
    anchors = (pki.root_der,)
    out = {
        f"pades-{lvl}": Sample("offre.pdf", sign_pdf(pdf, pki, level=lvl), anchors=anchors)
        for lvl in ("B-B", "B-T", "B-LT", "B-LTA")
    }
    bt = out["pades-B-T"].data
    out["pades-modified"] = Sample("offre.pdf", tamper_incremental(bt), anchors=anchors)
    out["pades-hash-failure"] = Sample("offre.pdf", flip_signed_byte(bt), anchors=anchors)
    out["pades-revoked"] = Sample("offre.pdf", sign_pdf(pdf, pki, label="revoked-before"), anchors=anchors)
    out["pades-untrusted"] = Sample("offre.pdf", sign_pdf(pdf, pki, label="rogue-signer"), anchors=anchors)
    out["pades-no-anchor"] = Sample("offre.pdf", bt)  # nothing trusted: INDETERMINATE
    out["unsigned"] = Sample("offre.pdf", pdf, anchors=anchors)
    return out


def cades_samples(pki: TestPKI) -> dict[str, Sample]:
    doc = make_pdf("Mémoire technique")
    anchors = (pki.root_der,)
    return {
        "cades-detached": Sample("memoire.pdf.p7s", sign_cms(doc, pki), {"memoire.pdf": doc}, anchors),
        "cades-enveloping": Sample("memoire.pdf.p7m", sign_cms(doc, pki, detached=False), anchors=anchors),
        "cades-wrong-data": Sample(
            "memoire.pdf.p7s", sign_cms(doc, pki), {"memoire.pdf": make_pdf("autre chose")}, anchors
        ),
    }


def xades_samples(pki: LoopbackPKI) -> dict[str, Sample]:
    doc = make_pdf("Acte d'engagement")
    anchors = (pki.root.der,)

    def xml(who: object, tsa: bool) -> bytes:
        signature = sign_detached({"ae.pdf": doc}, who)  # type: ignore[arg-type]
        if tsa:
            add_signature_timestamp(signature, f"{pki.base}/tsa")
        return bytes(etree.tostring(signature, xml_declaration=True, encoding="UTF-8"))

    return {
        "xades-B-B": Sample("ae.xml", xml(pki.signer, False), {"ae.pdf": doc}, anchors),
        "xades-B-T": Sample("ae.xml", xml(pki.signer, True), {"ae.pdf": doc}, anchors),
        "xades-revoked": Sample("ae.xml", xml(pki.revoked, True), {"ae.pdf": doc}, anchors),
        "xades-untrusted": Sample("ae.xml", xml(pki.untrusted, False), {"ae.pdf": doc}, anchors),
    }
