"""PDFs that need gigabytes of memory to read, built in a few megabytes and milliseconds.

A deflate stream of zeros is written by hand: one block of 64 MiB of zeros compressed and ended with a
full flush (so it depends on nothing before it) is repeated, then the final empty block and the
Adler-32 of the zeros (a = 1, b = n mod 65521) close the zlib stream. zlib would take seconds per GiB.
"""

from __future__ import annotations

import io
import struct
import zlib

import pikepdf

GiB = 1 << 30
_CHUNK = 64 << 20


def deflate_zeros(size: int) -> bytes:
    assert size % _CHUNK == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(_CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return b"\x78\xda" + block * (size // _CHUNK) + b"\x03\x00" + struct.pack(">I", ((size % 65521) << 16) | 1)


def _bomb_stream(doc: pikepdf.Pdf, size: int, twice: bool) -> pikepdf.Stream:
    stream = pikepdf.Stream(doc, b"")
    raw = deflate_zeros(size)
    if twice:  # a chain of two filters: the file holds a few kilobytes
        stream.write(zlib.compress(raw, 9), filter=pikepdf.Array([pikepdf.Name.FlateDecode] * 2))
    else:
        stream.write(raw, filter=pikepdf.Name.FlateDecode)
    stream.Type = pikepdf.Name.EmbeddedFile
    return stream


def pdf_bomb(where: str = "names", size: int = 3 * GiB, twice: bool = False) -> bytes:
    """A one-page PDF with an embedded file inflating to ``size`` bytes, declared in the catalogue's
    /Names tree (``names``) or by a file attachment annotation on the page (``annotation``)."""
    doc = pikepdf.new()
    doc.add_blank_page()
    spec = doc.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F=pikepdf.String("zeros.bin"),
                                                EF=pikepdf.Dictionary(F=_bomb_stream(doc, size, twice))))
    if where == "names":
        tree = pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("zeros.bin"), spec]))
        doc.Root.Names = pikepdf.Dictionary(EmbeddedFiles=tree)
    else:
        annot = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment,
                                   Rect=pikepdf.Array([0, 0, 10, 10]), FS=spec)
        doc.pages[0].obj.Annots = doc.make_indirect(pikepdf.Array([doc.make_indirect(annot)]))
    out = io.BytesIO()
    doc.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()
