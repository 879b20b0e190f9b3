"""Single files: what they really are, the PDF rendition, and the codes for everything refused."""

from __future__ import annotations

import datetime
import hashlib
import io
import zipfile

import pikepdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from bidproc.domain import Verdict
from bidproc.intake.inspect import IntakeLimits
from tests.intake.builders import EICAR, pdf, zip_of
from tests.intake.conftest import Check, RecordingScanner

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # a PNG header is enough for magic


def _has_javascript(data: bytes) -> bool:
    """Any JavaScript action or name tree anywhere in the PDF's object graph."""
    with pikepdf.open(io.BytesIO(data)) as doc:
        for obj in doc.objects:
            if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                d = obj.stream_dict if isinstance(obj, pikepdf.Stream) else obj
                if "/JS" in d or d.get("/S") == "/JavaScript" or "/JavaScript" in d or "/OpenAction" in d or "/AA" in d:
                    return True
        return any("/AA" in p.obj for p in doc.pages)


def test_pdf_with_javascript_original_untouched_rendition_clean(check: Check) -> None:
    original = pdf(javascript=True)
    assert _has_javascript(original)
    kept = bytes(original)
    verdict = check("offre.pdf", original)
    assert original == kept and verdict.sha256 == hashlib.sha256(kept).hexdigest()
    assert verdict.verdict is Verdict.ACCEPTED and "pdf.active_content" in verdict.warnings
    (rendition,) = verdict.renditions
    assert rendition.source_sha256 == verdict.sha256 and rendition.sha256 == hashlib.sha256(rendition.data).hexdigest()
    assert not _has_javascript(rendition.data)
    assert {"removed:/OpenAction", "removed:/JavaScript", "removed:/AA", "linearised"} <= set(rendition.actions)
    with pikepdf.open(io.BytesIO(rendition.data)) as doc:
        assert doc.is_linearized and len(doc.pages) == 1


def test_clean_pdf_is_accepted_without_warnings(check: Check) -> None:
    verdict = check("offre.pdf", pdf())
    assert (verdict.verdict, verdict.kind, verdict.warnings) == (Verdict.ACCEPTED, "pdf", ())
    assert verdict.to_json()["renditions"][0]["actions"] == ["linearised"]


def test_eicar_as_pdf_attachment(check: Check) -> None:
    verdict = check("offre.pdf", pdf(attachment=("readme.txt", EICAR)))
    assert (verdict.verdict, verdict.code) == (Verdict.QUARANTINED, "malware.detected")
    (trace,) = verdict.malware
    assert trace.path in {"offre.pdf", "offre.pdf/readme.txt"} and "Eicar" in trace.signature
    assert verdict.renditions == ()


def test_pdf_attachments_are_scanned_and_stripped(check: Check, recording: RecordingScanner) -> None:
    verdict = check("offre.pdf", pdf(attachment=("annexe.txt", b"an innocent annex")), using=recording)
    assert verdict.verdict is Verdict.ACCEPTED
    assert hashlib.sha256(b"an innocent annex").hexdigest() in recording.scanned
    assert {"pdf.attachments", "pdf.active_content"} <= set(verdict.warnings)
    with pikepdf.open(io.BytesIO(verdict.renditions[0].data)) as doc:
        assert len(doc.attachments) == 0


def test_password_protected_pdf(check: Check) -> None:
    assert check("offre.pdf", pdf(password="secret")).code == "pdf.encrypted"


def test_unrepairable_pdf(check: Check) -> None:
    assert check("offre.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 100).code == "pdf.malformed"


def test_signed_pdf_keeps_original_as_document_of_record(check: Check) -> None:
    doc = pikepdf.new()
    doc.add_blank_page()
    sig = doc.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Sig, ByteRange=pikepdf.Array([0, 0, 0, 0])))
    field = doc.make_indirect(pikepdf.Dictionary(FT=pikepdf.Name.Sig, T=pikepdf.String("s1"), V=sig))
    doc.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]), SigFlags=3)
    out = io.BytesIO()
    doc.save(out)
    verdict = check("signed.pdf", out.getvalue())
    assert verdict.verdict is Verdict.ACCEPTED and "pdf.signed" in verdict.warnings
    assert "signature-not-preserved" in verdict.renditions[0].actions


def test_executable_renamed_pdf(check: Check) -> None:
    with open("/bin/true", "rb") as f:
        elf = f.read()
    verdict = check("offre.pdf", elf)
    assert (verdict.verdict, verdict.kind, verdict.code) == (Verdict.REJECTED, "executable", "type.not_allowed")


@pytest.mark.parametrize("name", ["install.bat", "macro.vbs", "run.ps1", "x.js"])
def test_scripts_are_refused_by_name(check: Check, name: str) -> None:
    assert check(name, b"echo hello\r\n").code == "type.not_allowed"


def test_shell_script_is_refused_by_content(check: Check) -> None:
    assert check("notes.txt", b"#!/bin/sh\nrm -rf /\n").code == "type.not_allowed"


def test_extension_lying_about_content(check: Check) -> None:
    verdict = check("memoire.pdf", PNG)
    assert (verdict.kind, verdict.code) == ("image", "type.mismatch")


def test_pdf_zip_polyglot(check: Check) -> None:
    verdict = check("offre.pdf", pdf() + zip_of([("hidden.txt", b"surprise")]))
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "type.polyglot")


def test_empty_file(check: Check) -> None:
    verdict = check("vide.pdf", b"")
    assert (verdict.verdict, verdict.code, verdict.size) == (Verdict.REJECTED, "file.empty", 0)


def test_too_large(check: Check) -> None:
    verdict = check("big.txt", b"x" * 2048, IntakeLimits(max_file_bytes=1024))
    assert verdict.code == "size.too_large" and verdict.sha256


def test_kind_not_allowed_by_tender(check: Check) -> None:
    limits = IntakeLimits(allowed_kinds=frozenset({"pdf"}))
    assert check("photo.png", PNG, limits).code == "type.not_allowed"
    assert check("offre.pdf", pdf(), limits).verdict is Verdict.ACCEPTED


def test_office_macros(check: Check) -> None:
    docm = zip_of([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>"), ("word/vbaProject.bin", b"x")])
    verdict = check("offre.docm", docm)
    assert (verdict.kind, verdict.verdict) == ("office-ooxml", Verdict.ACCEPTED)
    assert "office.macros" in verdict.warnings
    docx = zip_of([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])
    assert check("offre.docx", docx).warnings == ()


def test_odf(check: Check) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), b"application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", b"<office:document-content/>")
        z.writestr("Basic/Standard/Module1.xml", b"<script/>")
    verdict = check("offre.odt", out.getvalue())
    assert verdict.kind == "office-odf" and "office.macros" in verdict.warnings


def _cms(detached: bool) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Soumissionnaire")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    options = [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    builder = pkcs7.PKCS7SignatureBuilder().set_data(b"offre").add_signer(cert, key, hashes.SHA256())
    return builder.sign(serialization.Encoding.DER, options)


def test_cms_signatures_are_recognised_by_parsing(check: Check) -> None:
    detached = check("offre.pdf.p7s", _cms(detached=True))
    assert (detached.kind, detached.media_type, detached.verdict) == (
        "cms-signature",
        "application/pkcs7-signature",
        Verdict.ACCEPTED,
    )
    assert check("offre.p7m", _cms(detached=False)).media_type == "application/pkcs7-mime"


def test_der_that_is_not_cms(check: Check) -> None:
    fake = bytes.fromhex("3080") + bytes.fromhex("06092a864886f70d010702") + b"\x00" * 40
    verdict = check("faux.p7s", fake)
    assert (verdict.kind, verdict.code) == ("unknown", "type.not_allowed")
    widened = IntakeLimits(allowed_kinds=IntakeLimits().allowed_kinds | {"unknown"})
    assert check("faux.p7s", fake, widened).code == "type.mismatch"  # allowed kind, but not what .p7s promises


def test_xml_signature_and_plain_xml(check: Check) -> None:
    signed = b'<doc><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/></Signature></doc>'
    assert check("offre.xml", signed).kind == "xml-signature"
    assert check("dume.xml", b'<?xml version="1.0"?><ESPDResponse/>').kind == "xml"


def test_xml_with_entities_is_refused_unexpanded(check: Check) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>'
    assert check("bomb.xml", laughs).code == "xml.unsafe"


def test_plain_file_is_scanned_once_with_its_hash(check: Check, recording: RecordingScanner) -> None:
    verdict = check("note.txt", b"notre offre\n", using=recording)
    assert recording.scanned == [hashlib.sha256(b"notre offre\n").hexdigest()] == [verdict.sha256]


def test_eicar_plain(check: Check) -> None:
    verdict = check("eicar.txt", EICAR)
    assert verdict.verdict is Verdict.QUARANTINED and verdict.malware[0].path == "eicar.txt"
    assert verdict.to_json()["malware"][0]["sha256"] == hashlib.sha256(EICAR).hexdigest()


def test_eocd_signature_inside_pdf_data_is_not_a_polyglot(check: Check) -> None:
    # the 4 signature bytes alone (as in some compressed stream) do not make a ZIP
    verdict = check("offre.pdf", pdf() + b"% PK\x05\x06 is just bytes here\n")
    assert verdict.verdict is Verdict.ACCEPTED


def test_unreadable_original_is_an_environment_error_not_a_verdict(scanner: object) -> None:
    from bidproc.errors import BidprocError, Code
    from bidproc.intake.inspect import inspect

    def broken() -> io.BytesIO:
        raise OSError("object store went away")

    with pytest.raises(BidprocError) as caught:
        inspect("offre.pdf", broken, scanner)  # type: ignore[arg-type]
    assert caught.value.code is Code.STORAGE_UNAVAILABLE


def test_legacy_office_macros(check: Check) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with_macros = check("dc1.doc", ole + "_VBA_PROJECT".encode("utf-16-le") + bytes(2000))
    assert (with_macros.kind, with_macros.verdict) == ("office-legacy", Verdict.ACCEPTED)
    assert with_macros.warnings == ("office.macros",)
    assert check("dc2.doc", ole + bytes(2000)).warnings == ()


def test_limits_from_a_tender_policy() -> None:
    from bidproc.errors import BidprocError

    limits = IntakeLimits.from_mapping({"max_depth": "2", "allowed_kinds": ["pdf", "archive"], "max_ratio": 50})
    assert (limits.max_depth, limits.allowed_kinds, limits.max_ratio) == (2, frozenset({"pdf", "archive"}), 50.0)
    with pytest.raises(BidprocError):
        IntakeLimits.from_mapping({"max_dept": 2})
    with pytest.raises(BidprocError):
        IntakeLimits.from_mapping({"allowed_kinds": ["pdf", "movie"]})


def test_large_xml_is_classified_as_a_stream(check: Check) -> None:
    import resource

    body = b"<Ligne><Prix>12.50</Prix><Libelle>Fourniture</Libelle></Ligne>" * 400_000  # 25 MB
    signed = b"<Bordereau>" + body + b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></Bordereau>'
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdict = check("bordereau.xml", signed)
    assert verdict.kind == "xml-signature"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before < 150
