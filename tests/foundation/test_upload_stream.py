"""The upload path cuts what the client sends into encryption chunks: any cut must store the file whole."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from sqlalchemy import select

from bidproc.api.upload import UPLOAD_BUFFER, split_chunk
from bidproc.encryption.stream import decrypt_bytes
from bidproc.metadata.models import BidRow, DocumentRow
from tests.foundation.stack import Stack


def test_split_cuts_one_chunk_off_without_copying() -> None:
    parts: list[bytes | memoryview] = [b"a" * 3, b"b" * 10]
    whole, rest = split_chunk(parts, 4)  # 13 held, a chunk of 9 wanted
    assert b"".join(whole) == b"aaa" + b"b" * 6 and b"".join(rest) == b"bbbb"
    assert isinstance(rest[0], memoryview) and rest[0].obj is parts[1]  # a view of the client's piece
    assert split_chunk(parts, 0) == (parts, [])


def test_an_upload_cut_anywhere_is_stored_whole(stack: Stack) -> None:
    """Pieces of one byte, of exactly one chunk, straddling chunks and several chunks at once: the answer's
    size and SHA-256 are the client's, and the stored object decrypts to the very bytes sent."""
    rng = random.Random(13)
    data = rng.randbytes(5 * UPLOAD_BUFFER + 777)
    sizes = [1, 65_536, 700_000, UPLOAD_BUFFER, 3 * UPLOAD_BUFFER + 5, 1, UPLOAD_BUFFER - 1]

    def pieces() -> Iterator[bytes]:
        at = 0
        for n in sizes:
            yield data[at : at + n]
            at += n
        yield data[at:]

    http = stack.client()
    tender = stack.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Découpe SARL"}).json()
    r = http.put(f"/v1/bids/{bid['id']}/files/offre.bin", content=pieces())
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "offre.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with stack.rt.db.session() as s:
        doc = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid["id"])).scalar_one()
        wrapped = s.get(BidRow, bid["id"]).wrapped_key  # type: ignore[union-attr]
    assert wrapped is not None
    key = stack.rt.service_key.unwrap(wrapped)
    blob = stack.rt.store.get_bytes(doc.object_key)
    assert decrypt_bytes(key, blob, context=doc.object_key.encode()) == data
