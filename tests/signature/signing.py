"""Making signed test material with pyhanko against the test PKI (the signer side of the tests)."""

# pyhanko's PDF object constructors and writer methods carry no annotations
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import io
from datetime import datetime

import aiohttp
import pikepdf
from asn1crypto import cms
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore

from tests.pki import TestPKI


def make_pdf(text: str = "Offre technique et financière", pages: int = 1) -> bytes:
    """A small PDF with visible text on each page."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    )
    for n in range(pages):
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        ascii_text = text.encode("latin-1", "replace").decode("latin-1")
        page.Contents = pdf.make_stream(f"BT /F1 14 Tf 72 760 Td ({ascii_text} - page {n + 1}) Tj ET".encode("latin-1"))
    out = io.BytesIO()
    pdf.save(out, deterministic_id=True, compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return out.getvalue()


def signer_for(pki: TestPKI, label: str) -> signers.SimpleSigner:
    return signers.SimpleSigner(
        signing_cert=pki.cert(label),
        signing_key=pki.key(label),
        cert_registry=SimpleCertificateStore.from_certs(pki.chain(label)),
    )


def _vc(pki: TestPKI, session: aiohttp.ClientSession) -> ValidationContext:
    return ValidationContext(
        trust_roots=[pki.cert("root")],
        allow_fetching=True,
        fetcher_backend=AIOHttpFetcherBackend(session),
        revocation_mode="require",
    )


async def _sign_pdf(
    pdf: bytes,
    pki: TestPKI,
    label: str,
    level: str,
    field: str,
    headers: dict[str, str] | None,
    box: tuple[int, int, int, int] | None = None,
) -> bytes:
    async with aiohttp.ClientSession(headers=headers) as session:
        meta = PdfSignatureMetadata(
            field_name=field,
            subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=level in {"B-LT", "B-LTA"},
            use_pades_lta=level == "B-LTA",
            validation_context=_vc(pki, session) if level in {"B-LT", "B-LTA"} else None,
        )
        stamper = HTTPTimeStamper(pki.tsa_url, session=session, headers=headers) if level != "B-B" else None
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        spec = fields.SigFieldSpec(field, box=box) if box else None
        signer = PdfSigner(meta, signer_for(pki, label), timestamper=stamper, new_field_spec=spec)
        out = await signer.async_sign_pdf(writer)
        return out.getvalue()  # type: ignore[no-any-return]


def sign_pdf(
    pdf: bytes,
    pki: TestPKI,
    label: str = "signer",
    level: str = "B-T",
    field: str = "Signature1",
    at: datetime | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> bytes:
    """PAdES-signed copy of ``pdf`` at ``level`` (B-B, B-T, B-LT, B-LTA); ``at`` fakes the TSA/OCSP time,
    ``box`` makes a new visible signature field there."""
    headers = {"X-Certomancer-Fake-Time": at.isoformat()} if at else None
    return asyncio.run(_sign_pdf(pdf, pki, label, level, field, headers, box))


async def _sign_cms(data: bytes, pki: TestPKI, label: str, detached: bool, timestamp: bool) -> bytes:
    async with aiohttp.ClientSession() as session:
        stamper = HTTPTimeStamper(pki.tsa_url, session=session) if timestamp else None
        signed = await signer_for(pki, label).async_sign_general_data(
            data, "sha256", detached=detached, timestamper=stamper
        )
        assert isinstance(signed, cms.ContentInfo)
        return bytes(signed.dump())


def sign_cms(data: bytes, pki: TestPKI, label: str = "signer", detached: bool = True, timestamp: bool = True) -> bytes:
    """CAdES signature over ``data``: detached (.p7s) or enveloping (.p7m), with a signature timestamp."""
    return asyncio.run(_sign_cms(data, pki, label, detached, timestamp))


def tamper_incremental(signed: bytes, add_page: bool = True, new_text: str | None = "Offre modifiee: 1 EUR") -> bytes:
    """An incremental update after signing: a page appended and/or page 1's text replaced (no signature)."""
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    first = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = first.get_object()
    if new_text is not None:
        stream = generic.StreamObject(stream_data=f"BT /F1 14 Tf 72 760 Td ({new_text}) Tj ET".encode("latin-1"))
        page["/Contents"] = writer.add_object(stream)
        writer.mark_update(first)
    if add_page:
        new_page = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Page"),
                generic.NameObject("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(n) for n in (0, 0, 595, 842)]
                ),
                generic.NameObject("/Resources"): page["/Resources"],
                generic.NameObject("/Contents"): writer.add_object(
                    generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (Annexe ajoutee apres signature) Tj ET")
                ),
            }
        )
        writer.insert_page(new_page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def flip_signed_byte(signed: bytes, needle: bytes = b"Offre", replacement: bytes = b"Offrf") -> bytes:
    """Change visible text inside the signed byte range without touching the signature."""
    assert len(needle) == len(replacement) and needle in signed
    return signed.replace(needle, replacement, 1)


def certify_pdf(pdf: bytes, pki: TestPKI, level: str = "B-T", permission: int = 1) -> bytes:
    """A certification signature (DocMDP P=1: no change allowed afterwards; 3: annotations allowed)."""
    from pyhanko.sign.fields import MDPPerm

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            meta = PdfSignatureMetadata(
                field_name="Certification",
                subfilter=fields.SigSeedSubFilter.PADES,
                certify=True,
                docmdp_permissions=MDPPerm(permission),
            )
            stamper = HTTPTimeStamper(pki.tsa_url, session=session) if level != "B-B" else None
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
            out = await PdfSigner(meta, signer_for(pki, "signer"), timestamper=stamper).async_sign_pdf(writer)
            return out.getvalue()  # type: ignore[no-any-return]

    return asyncio.run(go())


def fetch_ocsp(pki: TestPKI, label: str, at: datetime) -> bytes:
    """The OCSP response the test responder gives for ``label`` as of ``at`` (its fake-time header)."""
    from pyhanko_certvalidator.authority import AuthorityWithCert
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers.ocsp_client import AIOHttpOCSPFetcher

    async def go() -> bytes:
        async with aiohttp.ClientSession(headers={"X-Certomancer-Fake-Time": at.isoformat()}) as session:
            fetcher = AIOHttpOCSPFetcher(session)
            resp = await fetcher.fetch(pki.cert(label), AuthorityWithCert(pki.cert("interm")))
            return bytes(resp.dump())

    return asyncio.run(go())


def fetch_crl(pki: TestPKI, repo: str, at: datetime) -> bytes:
    """The CRL repository ``repo`` of the test PKI as of ``at``."""
    import urllib.request

    request = urllib.request.Request(
        f"{pki.base_url}/bidproc-test/crls/{repo}/latest.crl", headers={"X-Certomancer-Fake-Time": at.isoformat()}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return bytes(resp.read())


def asic_s(data_name: str, data: bytes, signature: bytes) -> bytes:
    """An ASiC-S container: one data file and META-INF/signature.p7s (EN 319 162-1 §4.3)."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.etsi.asic-s+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(data_name, data)
        zf.writestr("META-INF/signature.p7s", signature)
    return out.getvalue()


def asic_manifest(members: dict[str, bytes], signature_name: str = "META-INF/signature001.p7s") -> bytes:
    import base64
    import hashlib

    refs = "".join(
        f'<asic:DataObjectReference URI="{name}"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        f"<ds:DigestValue>{base64.b64encode(hashlib.sha256(data).digest()).decode()}</ds:DigestValue>"
        "</asic:DataObjectReference>"
        for name, data in members.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><asic:ASiCManifest xmlns:asic="http://uri.etsi.org/02918/v1.2.1#" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><asic:SigReference URI="{signature_name}" '
        f'MimeType="application/pkcs7-signature"/>{refs}</asic:ASiCManifest>'
    ).encode()


def asic_e(members: dict[str, bytes], manifest: bytes, signature: bytes) -> bytes:
    """An ASiC-E container with a CAdES signature over META-INF/ASiCManifest.xml."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.etsi.asic-e+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("META-INF/ASiCManifest.xml", manifest)
        zf.writestr("META-INF/signature001.p7s", signature)
    return out.getvalue()


def add_revocation_values(signed: bytes, ocsps: list[bytes], crls: list[bytes]) -> bytes:
    """CAdES-LT by hand: a revocation-values unsigned attribute (RFC 5126 §6.3.4) on the first signer.

    pyhanko signs CAdES B-B/B-T only; the tests need B-LT material to check it validates offline.
    """
    from asn1crypto import crl, ocsp

    from bidproc.signature.cades.validator import REVOCATION_VALUES, RevocationValues

    info = cms.ContentInfo.load(signed)
    sd = info["content"]
    si = sd["signer_infos"][0]
    values = RevocationValues(
        {
            "crl_vals": [crl.CertificateList.load(c) for c in crls],
            "ocsp_vals": [ocsp.OCSPResponse.load(o)["response_bytes"]["response"].parsed for o in ocsps],
        }
    )
    attr = cms.CMSAttribute({"type": cms.CMSAttributeType(REVOCATION_VALUES), "values": [values]})
    attrs = list(si["unsigned_attrs"]) if si["unsigned_attrs"].native else []
    si["unsigned_attrs"] = cms.CMSAttributes([*attrs, attr])
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump(force=True))


def annotate(signed: bytes, hidden: bool = False, subtype: str = "/FreeText") -> bytes:
    """An incremental update adding an annotation over page 1's text (the shadow "hide" overlay)."""
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    first = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = first.get_object()
    annot = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject(subtype),
            generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in (60, 740, 500, 790)]),
            generic.NameObject("/Contents"): generic.TextStringObject("Prix: 1 EUR"),
            generic.NameObject("/DA"): generic.TextStringObject("/Helv 14 Tf 0 g"),
            generic.NameObject("/F"): generic.NumberObject(2 if hidden else 4),
        }
    )
    annots = page.get("/Annots")
    refs = list(annots.iterate()) if isinstance(annots, generic.ArrayObject) else []
    page["/Annots"] = generic.ArrayObject([*refs, writer.add_object(annot)])
    writer.mark_update(first)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def overwrite_content(signed: bytes, new_text: str = "Prix total: 1 EUR") -> bytes:
    """Shadow "replace": page 1's existing content stream object redefined (same object number)."""
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    ref = writer.root["/Pages"]["/Kids"][0].raw_get("/Contents")
    stream = generic.StreamObject(stream_data=f"BT /F1 14 Tf 72 760 Td ({new_text}) Tj ET".encode("latin-1"))
    writer.objects[(ref.generation, ref.idnum)] = stream
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def form_pdf(price: str = "100000 EUR") -> bytes:
    """A one-page PDF with a text form field "Prix"."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    field = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            FT=pikepdf.Name.Tx,
            T=pikepdf.String("Prix"),
            V=pikepdf.String(price),
            Rect=pikepdf.Array([72, 700, 300, 720]),
            P=page.obj,
            DA=pikepdf.String("/Helv 12 Tf 0 g"),
        )
    )
    page.obj.Annots = pdf.make_indirect(pikepdf.Array([field]))
    pdf.Root.AcroForm = pdf.make_indirect(
        pikepdf.Dictionary(Fields=pikepdf.Array([field]), DA=pikepdf.String("/Helv 12 Tf 0 g"))
    )
    out = io.BytesIO()
    pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return out.getvalue()


def fill_field(signed: bytes, value: str, name: str = "Prix") -> bytes:
    """An incremental update that changes a form field's value (form filling after signing)."""
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == name:
            field["/V"] = generic.TextStringObject(value)
            writer.mark_update(ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
