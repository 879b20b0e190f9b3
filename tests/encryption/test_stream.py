"""The chunked stream format does not depend on how the plaintext was cut into writes."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from bidproc.encryption.stream import HEADER_LEN, TAG_LEN, Encryptor, decrypt_bytes


@pytest.mark.parametrize("chunk", [4096, 5000, 1 << 16])
def test_any_cut_of_the_writes_gives_the_same_chunks(chunk: int) -> None:
    """Pieces of exactly one chunk are sealed without a copy, others joined: whatever the cut (empty,
    one byte, one chunk exactly, straddling pieces; bytes, bytearray or memoryview), the object holds the
    same plaintext in full chunks, and a caller reusing its buffer afterwards changes nothing."""
    rng = random.Random(chunk)
    key = os.urandom(32)
    for size in (0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 7 * chunk + 3, rng.randrange(10 * chunk)):
        data = rng.randbytes(size)
        out: list[bytes] = []
        enc = Encryptor(key, out.append, chunk, context=b"k")
        at = 0
        while at < size:
            n = rng.choice([0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, rng.randrange(1, 3 * chunk)])
            piece = rng.choice([bytes, bytearray, memoryview])(data[at : at + n])
            enc.write(piece)
            if isinstance(piece, bytearray):
                piece[:] = bytes(len(piece))  # the caller reuses its buffer
            at += n
        assert enc.finish() == hashlib.sha256(data).hexdigest() and enc.size == size
        blob = b"".join(out)
        full, rest = divmod(size, chunk)
        if rest == 0 and full:  # the last full chunk is the final one
            full, rest = full - 1, chunk
        assert [len(c) for c in out[1:]] == [chunk + TAG_LEN] * full + [rest + TAG_LEN]
        assert len(out[0]) == HEADER_LEN
        assert decrypt_bytes(key, blob, context=b"k") == data
