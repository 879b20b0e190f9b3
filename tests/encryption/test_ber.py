"""The hand-written BER framing: headers, and OCTET STRING content in every form CMS encoders use."""

from __future__ import annotations

import io

import pytest
from asn1crypto import core

from bidproc.encryption import ber
from bidproc.errors import BidprocError, Code


@pytest.mark.parametrize("length", [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24, (1 << 32) + 5])
def test_definite_headers_match_asn1crypto(length: int) -> None:
    value = core.OctetString(b"\x00" * length) if length < 1 << 17 else None
    encoded = ber.header(ber.OCTET_STRING, length)
    if value is not None:
        assert value.dump()[: len(encoded)] == encoded
    h = ber.Reader(io.BytesIO(encoded)).header()
    assert (h.tag, h.length, h.raw) == (ber.OCTET_STRING, length, encoded)


def _chunks(blob: bytes) -> bytes:
    r = ber.Reader(io.BytesIO(blob))
    data = b"".join(r.octet_chunks(r.header(), 3))
    assert r.offset == len(blob)  # consumed exactly the value, EOCs included
    return data


def test_octet_string_forms() -> None:
    primitive = ber.tlv(0x80, b"abcdefgh")  # [0] IMPLICIT, primitive (openssl without -stream)
    indefinite = b"\xa0\x80" + ber.tlv(4, b"abc") + ber.tlv(4, b"defgh") + b"\x00\x00"
    definite = ber.tlv(0xA0, ber.tlv(4, b"abc") + ber.tlv(4, b"defgh"))
    nested = b"\xa0\x80" + ber.tlv(0x24, ber.tlv(4, b"ab") + ber.tlv(4, b"c")) + b"\x24\x80" + ber.tlv(4, b"defgh") \
        + b"\x00\x00" + b"\x00\x00"
    empty = b"\xa0\x80\x00\x00"
    for blob in (primitive, indefinite, definite, nested):
        assert _chunks(blob) == b"abcdefgh"
    assert _chunks(empty) == b""


@pytest.mark.parametrize("blob", [
    b"\x9f\x81\x01\x00",  # high tag number
    b"\x04\x80",  # indefinite length on a primitive
    b"\x04\x89" + b"\x01" * 9,  # length of more than 8 octets
    b"\xa0\x80" + ber.tlv(0x02, b"\x01") + b"\x00\x00",  # a segment that is not an OCTET STRING
    b"\xa0\x80" + b"\x24\x80" * 40,  # nested too deeply
    ber.tlv(0xA0, ber.tlv(4, b"abc"))[:-1],  # truncated
    b"\xa0\x05" + ber.tlv(4, b"abcd"),  # segments overrun the constructed length
])
def test_malformed_framing_is_refused(blob: bytes) -> None:
    r = ber.Reader(io.BytesIO(blob))
    with pytest.raises(BidprocError) as info:
        list(r.octet_chunks(r.header(), 3))
    assert info.value.code is Code.SEAL_MALFORMED


def test_whole_reencodes_indefinite_values_and_bounds_them() -> None:
    blob = b"\x31\x80" + ber.tlv(0x30, b"\x02\x01\x05") + b"\x30\x80\x02\x01\x06\x00\x00" + b"\x00\x00"
    r = ber.Reader(io.BytesIO(blob))
    der = r.whole(r.header(), 100, "set")
    assert core.SetOf.load(der).dump() and der == ber.tlv(0x31, ber.tlv(0x30, b"\x02\x01\x05") +
                                                           ber.tlv(0x30, b"\x02\x01\x06"))
    r = ber.Reader(io.BytesIO(blob))
    with pytest.raises(BidprocError):
        r.whole(r.header(), 5, "set")
    r = ber.Reader(io.BytesIO(ber.tlv(0x31, b"\x00" * 50)))
    with pytest.raises(BidprocError):
        r.whole(r.header(), 10, "set")


def test_small_values_are_bounded_before_reading() -> None:
    huge = b"\x06\x84\x7f\xff\xff\xff"  # an OID claiming 2 GB, followed by nothing
    r = ber.Reader(io.BytesIO(huge))
    with pytest.raises(BidprocError) as info:
        r.value(r.header(), 64, "content type")
    assert info.value.code is Code.SEAL_MALFORMED and "longer than" in info.value.message
