"""Streaming BER framing for CMS envelopes: write and read TLV headers without holding the value.

Written by hand on purpose: asn1crypto (which builds and parses every *bounded* part of the envelope
here) needs a value whole in memory before it can dump or load it, so the one unbounded part of a CMS
AuthEnvelopedData, its encrypted content, is framed here as a BER indefinite-length constructed OCTET
STRING of chunks (X.690 8.7.3.2), the way ``openssl cms -stream`` writes it. Only the few header
forms CMS uses are handled; anything else is refused as malformed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from bidproc.errors import BidprocError, Code

EOC = b"\x00\x00"  # end-of-contents octets closing an indefinite-length value
INDEFINITE = -1
# Tags (class and constructed bit included) that this module reads or writes.
SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
CONSTRUCTED_OCTET_STRING = 0x24
OID = 0x06
INTEGER = 0x02
CTX0_CONSTRUCTED = 0xA0
CTX0_PRIMITIVE = 0x80
MAX_NESTING = 16  # indefinite-length values nested deeper than this are refused (no real encoder does it)


def malformed(message: str) -> BidprocError:
    return BidprocError(Code.SEAL_MALFORMED, message)


def header(tag: int, length: int) -> bytes:
    """A definite-length DER header (tag byte + length octets), or an indefinite one for INDEFINITE."""
    if length == INDEFINITE:
        return bytes((tag, 0x80))
    if length < 0x80:
        return bytes((tag, length))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets


def tlv(tag: int, value: bytes) -> bytes:
    return header(tag, len(value)) + value


@dataclass(frozen=True)
class Header:
    tag: int
    length: int  # INDEFINITE for BER indefinite length
    raw: bytes  # the header's own bytes, to rebuild a whole TLV for asn1crypto


class Reader:
    """Reads a BER stream forward only, counting bytes; never reads more than it is asked to."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.offset = 0

    def read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        remaining = n
        while remaining:
            piece = self._src.read(remaining)
            if not piece:
                raise malformed(f"envelope truncated at byte {self.offset}")
            parts.append(piece)
            remaining -= len(piece)
            self.offset += len(piece)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def header(self) -> Header:
        first = self.read_exact(2)
        tag, lead = first[0], first[1]
        if tag & 0x1F == 0x1F:
            raise malformed(f"high tag numbers are not used in CMS (byte {self.offset - 2})")
        if lead == 0x80:
            if not tag & 0x20:
                raise malformed("indefinite length on a primitive value")
            return Header(tag, INDEFINITE, first)
        if lead < 0x80:
            return Header(tag, lead, first)
        count = lead & 0x7F
        if count > 8:
            raise malformed("length field too long")
        octets = self.read_exact(count)
        return Header(tag, int.from_bytes(octets, "big"), first + octets)

    def expect(self, tag: int, what: str) -> Header:
        h = self.header()
        if h.tag != tag:
            at = self.offset - len(h.raw)
            raise malformed(f"expected {what} (tag 0x{tag:02x}) at byte {at}, found 0x{h.tag:02x}")
        return h

    def value(self, h: Header, limit: int, what: str) -> bytes:
        """The content octets of a small primitive value (an OID, an INTEGER), refused beyond ``limit``."""
        if h.length == INDEFINITE or h.length > limit:
            raise malformed(f"{what} longer than {limit} bytes")
        return self.read_exact(h.length)

    def whole(self, h: Header, limit: int, what: str, depth: int = 0) -> bytes:
        """The complete TLV whose header was just read, for asn1crypto; bounded by ``limit`` bytes.

        An indefinite-length value here (possible in BER, e.g. from ``openssl cms -stream``) is
        re-read element by element and returned with its definite-length re-encoding.
        """
        if h.length == INDEFINITE:
            if depth > MAX_NESTING:
                raise malformed(f"{what} nested too deeply")
            children = b""
            while True:
                child = self.header()
                if child.tag == 0 and child.length == 0:
                    break
                children += self.whole(child, limit - len(children), what, depth + 1)
                if len(children) > limit:
                    raise malformed(f"{what} larger than {limit} bytes")
            return header(h.tag, len(children)) + children
        if h.length > limit:
            raise malformed(f"{what} larger than {limit} bytes")
        return h.raw + self.read_exact(h.length)

    def end_of(self, h: Header, started_at: int, what: str) -> None:
        """Checks that a constructed value ends here: its EOC if indefinite, its exact length if not."""
        if h.length == INDEFINITE:
            if self.read_exact(2) != EOC:
                raise malformed(f"{what} has trailing content")
        elif self.offset - started_at != h.length:
            raise malformed(f"{what} length does not match its content")

    def octet_chunks(self, h: Header, chunk: int, depth: int = 0) -> Iterator[bytes]:
        """The content of an OCTET STRING (primitive or constructed, implicit tag or not), in pieces."""
        if depth > MAX_NESTING:
            raise malformed("constructed OCTET STRING nested too deeply")
        if not h.tag & 0x20:  # primitive: a definite length of raw bytes
            remaining = h.length
            while remaining:
                piece = self.read_exact(min(chunk, remaining))
                remaining -= len(piece)
                yield piece
            return
        start = self.offset
        while True:
            if h.length != INDEFINITE and self.offset - start >= h.length:
                if self.offset - start != h.length:
                    raise malformed("constructed OCTET STRING overruns its length")
                return
            inner = self.header()
            if h.length == INDEFINITE and inner.tag == 0 and inner.length == 0:
                return
            if inner.tag not in (OCTET_STRING, CONSTRUCTED_OCTET_STRING):
                raise malformed(f"segment of an encrypted content is not an OCTET STRING (tag 0x{inner.tag:02x})")
            yield from self.octet_chunks(inner, chunk, depth + 1)
