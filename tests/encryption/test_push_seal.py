"""Push-mode sealing (``Sealer``): what an upload writes as it streams opens with openssl, byte for byte."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from bidproc.encryption.envelope import Sealer, seal, unseal
from bidproc.errors import BidprocError, Code
from tests.encryption.conftest import Holder, openssl_decrypt


def _pushed(data: bytes, pieces: list[int], who: Holder) -> tuple[bytes, str | None]:
    out = io.BytesIO()
    sealer = Sealer(out, [who.cert])
    pos = 0
    for n in pieces:  # irregular pieces, as an HTTP body arrives (empty ones included)
        sealer.write(data[pos : pos + n])
        pos += n
    sealer.write(data[pos:])
    info = sealer.finish()
    assert info.size == len(data) and info.sealed_size == len(out.getvalue())
    return out.getvalue(), info.sha256


@pytest.mark.parametrize("size", [0, 1, 65_537])
def test_pushed_pieces_open_with_openssl_and_hash_the_plaintext(
    size: int, tmp_path: Path, main: Holder, ec_holder: Holder
) -> None:
    data = os.urandom(size)
    for who in (main, ec_holder):
        envelope, sha = _pushed(data, [7, 0, 4096, 1], who)
        assert sha == hashlib.sha256(data).hexdigest()
        if size > 64:
            assert data[:64] not in envelope
        path = tmp_path / "pushed.der"
        path.write_bytes(envelope)
        result = openssl_decrypt(path, who)
        assert result.returncode == 0, result.stderr
        assert result.stdout == data
        out = io.BytesIO()
        assert unseal(io.BytesIO(envelope), out, who.key, who.cert).sha256 == sha
        assert out.getvalue() == data


def test_an_unfinished_push_does_not_open(main: Holder) -> None:
    """A broken upload leaves an envelope without its tag: nothing opens it (and it is never stored)."""
    out = io.BytesIO()
    sealer = Sealer(out, [main.cert])
    sealer.write(os.urandom(5000))
    with pytest.raises(BidprocError) as info:
        unseal(io.BytesIO(out.getvalue()), io.BytesIO(), main.key, main.cert)
    assert info.value.code in {Code.SEAL_MALFORMED, Code.SEAL_TAMPERED}


def test_push_and_pull_write_the_same_layout(main: Holder) -> None:
    data = os.urandom(10_000)
    pulled = io.BytesIO()
    seal(io.BytesIO(data), pulled, [main.cert], chunk_size=4096)
    pushed, _ = _pushed(data, [4096, 4096], main)
    # same length (fresh keys and nonces differ): the same framing, chunk for chunk
    assert len(pushed) == len(pulled.getvalue())


def test_finish_twice_or_write_after_finish_is_a_bug(main: Holder) -> None:
    sealer = Sealer(io.BytesIO(), [main.cert])
    sealer.finish()
    with pytest.raises(ValueError):
        sealer.write(b"x")
    with pytest.raises(ValueError):
        sealer.finish()
