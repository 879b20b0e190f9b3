"""The /ByteRange of each PDF signature, checked against the file and against the other signatures.

pyhanko digests whatever ranges a signature names and judges "coverage" from their sizes: a range
covering the whole file is accepted without checking that the gap it leaves is the signature's own
/Contents string, and two signature fields may name the same gap (one signature value shown as two
signatures). ISO 32000-1 §12.8.1 and EN 319 142-1 §5.1 require the gap to be exactly the /Contents
value of the signature dictionary, hex string delimiters included. Hand-written: no library checks it.
"""

from __future__ import annotations

import re

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

HEX_STRING = re.compile(rb"<[0-9A-Fa-f]*>")


def _ranges(sig: EmbeddedPdfSignature) -> tuple[int, int, int, int] | None:
    try:
        values = tuple(int(v) for v in sig.byte_range)
    except (TypeError, ValueError):
        return None
    return (values[0], values[1], values[2], values[3]) if len(values) == 4 else None


MAX_DICTIONARY_BYTES = 1 << 20  # around /Contents: the rest of a signature dictionary is small


def _gap_in_own_dictionary(reader: PdfFileReader, sig: EmbeddedPdfSignature, len1: int, start2: int) -> bool:
    """Whether the gap lies inside the current definition of ``sig``'s own signature dictionary."""
    ref = getattr(sig.sig_field.raw_get("/V"), "reference", None)
    where = reader.xrefs.get_historical_ref(ref, reader.xrefs.total_revisions - 1) if ref is not None else None
    if not isinstance(where, int) or not where < len1 or len1 - where > MAX_DICTIONARY_BYTES:
        return False  # in an object stream (no byte range can exclude a compressed string), or elsewhere
    stream = reader.stream
    stream.seek(where)
    if b"endobj" in stream.read(len1 - where):
        return False
    stream.seek(start2)
    return b"endobj" in stream.read(MAX_DICTIONARY_BYTES)


def problems(reader: PdfFileReader, sig: EmbeddedPdfSignature, earlier: list[EmbeddedPdfSignature]) -> list[str]:
    """What is wrong with ``sig``'s /ByteRange, in words ([] if nothing); ``earlier``: signatures listed before it."""
    ranges = _ranges(sig)
    if ranges is None:
        return ["/ByteRange is not four integers"]
    start1, len1, start2, len2 = ranges
    stream = reader.stream
    size = stream.seek(0, 2)
    if start1 != 0 or len1 <= 0 or len2 <= 0 or start2 <= len1 or start2 + len2 > size:
        return [f"/ByteRange [{start1} {len1} {start2} {len2}]: not two ordered, non-empty ranges within the file"]
    found: list[str] = []
    stream.seek(len1)
    gap = stream.read(start2 - len1)
    if not HEX_STRING.fullmatch(gap):
        found.append(f"the bytes {len1}..{start2} left out of the signed range are not exactly one hex string")
    if not _gap_in_own_dictionary(reader, sig, len1, start2):
        found.append(f"the bytes {len1}..{start2} left out are not the /Contents of this signature's own dictionary")
    for other in earlier:
        theirs = _ranges(other)
        if theirs is not None and len1 < theirs[2] and theirs[1] < start2:
            found.append(f"the bytes left out of the signed range overlap those of signature {other.field_name}")
    return found
