"""CMS AuthEnvelopedData: round trips, openssl both ways, several recipients, tampering refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bidproc.encryption.envelope import Sealer, seal, seal_bytes, unseal, unseal_to_path
from bidproc.errors import BidprocError, Code
from tests.encryption.conftest import Holder, holder, openssl_decrypt, openssl_encrypt

CHUNK = 4096
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]


def _open(envelope: bytes, who: Holder, chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    unseal(io.BytesIO(envelope), out, who.key, who.cert, chunk_size=chunk_size)
    return out.getvalue()


def _refused(envelope: bytes, who: Holder) -> Code:
    with pytest.raises(BidprocError) as info:
        _open(envelope, who)
    return info.value.code


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_round_trip_at_chunk_boundaries(size: int, kind: str, main: Holder, ec_holder: Holder) -> None:
    who = main if kind == "rsa" else ec_holder
    data = os.urandom(size)
    out = io.BytesIO()
    info = seal(io.BytesIO(data), out, [who.cert], chunk_size=CHUNK)
    assert (info.size, info.sha256, info.sealed_size) == (size, hashlib.sha256(data).hexdigest(), len(out.getvalue()))
    assert _open(out.getvalue(), who) == data
    if size > 64:
        assert data[:64] not in out.getvalue()  # the content is not there in clear


def test_reads_a_source_without_readinto(main: Holder) -> None:
    class Source:
        """A stream offering only read(), in irregular pieces (as a socket or generator adapter would)."""

        def __init__(self, data: bytes) -> None:
            self._data, self._pos = data, 0

        def read(self, n: int) -> bytes:
            piece = self._data[self._pos : self._pos + min(n, 1000)]
            self._pos += len(piece)
            return piece

    data = os.urandom(3 * CHUNK + 5)
    out = io.BytesIO()
    seal(Source(data), out, [main.cert], chunk_size=CHUNK)  # type: ignore[arg-type]
    assert _open(out.getvalue(), main) == data


@pytest.mark.parametrize("size", [0, 100_000, 3 * CHUNK])
def test_openssl_decrypts_what_we_seal(size: int, tmp_path: Path, main: Holder, ec_holder: Holder) -> None:
    data = os.urandom(size)
    for who in (main, ec_holder):
        envelope = tmp_path / "sealed.der"
        with envelope.open("wb") as fh:
            seal(io.BytesIO(data), fh, [who.cert], chunk_size=CHUNK)
        result = openssl_decrypt(envelope, who)
        assert result.returncode == 0, result.stderr
        assert result.stdout == data


def test_backup_certificate_alone_opens(tmp_path: Path, main: Holder, backup: Holder, stranger: Holder) -> None:
    data = os.urandom(50_000)
    envelope = tmp_path / "sealed.der"
    envelope.write_bytes(seal_bytes(data, [main.cert, backup.cert]))
    for who in (main, backup):
        assert _open(envelope.read_bytes(), who) == data
        result = openssl_decrypt(envelope, who)
        assert (result.returncode, result.stdout) == (0, data)
    assert _refused(envelope.read_bytes(), stranger) is Code.OPENING_KEY_MISMATCH
    assert openssl_decrypt(envelope, stranger).returncode != 0


def test_key_and_certificate_must_match(main: Holder, backup: Holder) -> None:
    envelope = seal_bytes(b"offer", [main.cert, backup.cert])
    wrong_pair = Holder(backup.key, main.cert, backup.key_pem, main.cert_pem)
    assert _refused(envelope, wrong_pair) is Code.OPENING_KEY_MISMATCH


def test_mixed_rsa_and_ec_recipients(tmp_path: Path, main: Holder, ec_holder: Holder) -> None:
    data = os.urandom(10_000)
    envelope = tmp_path / "sealed.der"
    envelope.write_bytes(seal_bytes(data, [main.cert, ec_holder.cert]))
    for who in (main, ec_holder):
        assert _open(envelope.read_bytes(), who) == data
        assert openssl_decrypt(envelope, who).stdout == data


@pytest.mark.parametrize("variant", ["der", "stream", "two-recipients", "keyid"])
def test_we_open_what_openssl_seals_rsa_oaep(variant: str, tmp_path: Path, main: Holder, backup: Holder) -> None:
    data = os.urandom(100_003)
    plain, envelope = tmp_path / "plain.bin", tmp_path / "sealed.der"
    plain.write_bytes(data)
    recipients = (main, backup) if variant == "two-recipients" else (main,)
    extra = {"stream": ("-stream",), "keyid": ("-keyid",)}.get(variant, ())  # -keyid: rid by subjectKeyIdentifier
    openssl_encrypt(plain, envelope, *recipients, extra=extra)
    for who in recipients:
        assert _open(envelope.read_bytes(), who) == data


@pytest.mark.parametrize("kdf", ["sha256", "sha1"])
def test_we_open_what_openssl_seals_ecdh(kdf: str, tmp_path: Path, ec_holder: Holder) -> None:
    data = os.urandom(20_000)
    plain, envelope = tmp_path / "plain.bin", tmp_path / "sealed.der"
    plain.write_bytes(data)
    openssl_encrypt(plain, envelope, ec_holder, extra=("-keyopt", f"ecdh_kdf_md:{kdf}"))
    assert _open(envelope.read_bytes(), ec_holder) == data


def test_pkcs1_v15_key_transport_refused(tmp_path: Path, main: Holder) -> None:
    plain, envelope = tmp_path / "plain.bin", tmp_path / "sealed.der"
    plain.write_bytes(b"offer")
    import subprocess

    subprocess.run(["openssl", "cms", "-encrypt", "-aes-256-gcm", "-in", str(plain), "-out", str(envelope),
                    "-binary", "-outform", "DER", "-recip", str(main.cert_pem)], check=True)
    assert _refused(envelope.read_bytes(), main) is Code.SEAL_MALFORMED


def test_enveloped_data_cbc_is_not_an_auth_envelope(tmp_path: Path, main: Holder) -> None:
    plain, envelope = tmp_path / "plain.bin", tmp_path / "sealed.der"
    plain.write_bytes(b"offer")
    import subprocess

    subprocess.run(["openssl", "cms", "-encrypt", "-aes-256-cbc", "-in", str(plain), "-out", str(envelope),
                    "-binary", "-outform", "DER", "-recip", str(main.cert_pem)], check=True)
    assert _refused(envelope.read_bytes(), main) is Code.SEAL_MALFORMED


# --- tampering ---------------------------------------------------------------------------------------

DATA = os.urandom(5 * CHUNK + 123)


@pytest.fixture(scope="module")
def sealed(main: Holder) -> bytes:
    out = io.BytesIO()
    seal(io.BytesIO(DATA), out, [main.cert], chunk_size=CHUNK)
    return out.getvalue()


def _flip(blob: bytes, index: int) -> bytes:
    b = bytearray(blob)
    b[index] ^= 0x01
    return bytes(b)


def _content_offsets(blob: bytes) -> tuple[int, int]:
    """(first ciphertext byte, tag start). The envelope ends: ciphertext, EOC EOC, 04 10 tag, EOC EOC EOC."""
    first = blob.index(bytes((0x04, 0x82, CHUNK >> 8, CHUNK & 0xFF))) + 4
    tag = len(blob) - 6 - 16
    assert blob[tag - 6 : tag] == b"\x00\x00\x00\x00\x04\x10"
    return first, tag


@pytest.mark.parametrize("where", ["first", "middle", "last", "tag_first", "tag_last"])
def test_flipped_byte_is_refused(where: str, sealed: bytes, main: Holder, tmp_path: Path) -> None:
    first, tag = _content_offsets(sealed)
    index = {"first": first, "middle": first + 2 * CHUNK + 10, "last": tag - 7, "tag_first": tag,
             "tag_last": tag + 15}[where]
    bad = _flip(sealed, index)
    assert _refused(bad, main) is Code.SEAL_TAMPERED
    envelope = tmp_path / "bad.der"
    envelope.write_bytes(bad)
    assert openssl_decrypt(envelope, main).returncode != 0  # the standard tool refuses it too


def test_swapped_chunks_are_refused(sealed: bytes, main: Holder) -> None:
    first, _ = _content_offsets(sealed)
    stride = CHUNK + 4  # each segment: 04 82 hi lo + CHUNK bytes
    a = sealed[first : first + CHUNK]
    b = sealed[first + stride : first + stride + CHUNK]
    swapped = sealed[:first] + b + sealed[first + CHUNK : first + stride] + a + sealed[first + stride + CHUNK :]
    assert _refused(swapped, main) is Code.SEAL_TAMPERED


@pytest.mark.parametrize("cut", [10, 300, 5000, -30, -17, -1])
def test_truncated_envelope_is_refused(cut: int, sealed: bytes, main: Holder) -> None:
    assert _refused(sealed[:cut], main) in (Code.SEAL_MALFORMED, Code.SEAL_TAMPERED)


def test_dropped_chunk_is_refused(sealed: bytes, main: Holder) -> None:
    first, _ = _content_offsets(sealed)
    stride = CHUNK + 4
    dropped = sealed[: first - 4 + stride] + sealed[first - 4 + 2 * stride :]
    assert _refused(dropped, main) is Code.SEAL_TAMPERED


def test_altered_nonce_or_encrypted_key_is_refused(sealed: bytes, main: Holder) -> None:
    nonce_at = sealed.index(bytes.fromhex("3011040c")) + 4  # GCMParameters { OCTET STRING (12) ...
    assert _refused(_flip(sealed, nonce_at + 5), main) is Code.SEAL_TAMPERED
    key_at = sealed.index(bytes.fromhex("04820100")) + 4  # the 256-byte RSA-OAEP encrypted key
    assert _refused(_flip(sealed, key_at + 100), main) is Code.OPENING_KEY_MISMATCH


def test_trailing_bytes_are_refused(sealed: bytes, main: Holder) -> None:
    assert _refused(sealed + b"\x00", main) is Code.SEAL_MALFORMED


@pytest.mark.parametrize("damage", ["ciphertext", "tag", "truncated"])
def test_unseal_to_path_leaves_nothing_behind(damage: str, sealed: bytes, main: Holder, tmp_path: Path) -> None:
    first, tag = _content_offsets(sealed)
    bad = {"ciphertext": _flip(sealed, first + 7), "tag": _flip(sealed, tag + 2), "truncated": sealed[:-12]}[damage]
    target = tmp_path / "offer.pdf"
    with pytest.raises(BidprocError):
        unseal_to_path(io.BytesIO(bad), target, main.key, main.cert, chunk_size=CHUNK)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary remains


def test_unseal_to_path_writes_only_after_authentication(sealed: bytes, main: Holder, tmp_path: Path) -> None:
    target = tmp_path / "offer.pdf"
    info = unseal_to_path(io.BytesIO(sealed), target, main.key, main.cert)
    assert target.read_bytes() == DATA and info.sha256 == hashlib.sha256(DATA).hexdigest()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["offer.pdf"]


# --- recipients that cannot be sealed to -----------------------------------------------------------


def test_unusable_recipient_certificates(keydir: Path) -> None:
    from cryptography import x509

    from tests.encryption.conftest import make_cert

    weak = holder(keydir, "weak", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_only = make_cert(signing_key, "signer", x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False))
    for cert in (weak.cert, signing_only):
        with pytest.raises(BidprocError) as info:
            seal_bytes(b"offer", [cert])
        assert info.value.code is Code.SEAL_RECIPIENT_UNSUPPORTED
    with pytest.raises(BidprocError) as info:
        seal_bytes(b"offer", [])
    assert info.value.code is Code.SEAL_RECIPIENT_UNSUPPORTED


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_every_header_and_trailer_byte_is_covered(kind: str, main: Holder, ec_holder: Holder) -> None:
    """Flip each byte outside the ciphertext (structure, recipient info, algorithm, tag, EOCs): always refused,
    always as a BidprocError (never a parser crash, never plaintext reported good)."""
    who = main if kind == "rsa" else ec_holder
    out = io.BytesIO()
    seal(io.BytesIO(DATA), out, [who.cert], chunk_size=CHUNK)
    sealed = out.getvalue()
    first, tag = _content_offsets(sealed)
    # everything before the first segment's content; the last ciphertext bytes, EOCs, mac and closing EOCs
    positions = [*range(first - 4), *range(tag - 40, len(sealed))]
    codes, accepted = set(), []
    for index in positions:
        try:
            _open(_flip(sealed, index), who)
            accepted.append((index, sealed[max(0, index - 8) : index + 8].hex()))
        except BidprocError as exc:
            codes.add(exc.code)
    assert accepted == [], json.dumps(accepted)
    assert codes <= {Code.SEAL_MALFORMED, Code.SEAL_TAMPERED, Code.OPENING_KEY_MISMATCH}
    assert len(codes) == 3  # each kind of damage is named for what it is


def test_hostile_nesting_is_refused(main: Holder) -> None:
    deep = bytes.fromhex("3080060b2a864886f70d0109100117a080308002010031") + b"\x80" + b"\x30\x80" * 5000
    assert _refused(deep, main) is Code.SEAL_MALFORMED


def test_digest_can_be_skipped(main: Holder) -> None:
    data = os.urandom(2 * CHUNK + 1)
    out = io.BytesIO()
    info = seal(io.BytesIO(data), out, [main.cert], chunk_size=CHUNK, digest=False)
    assert info.sha256 is None and info.size == len(data)
    back = io.BytesIO()
    opened = unseal(io.BytesIO(out.getvalue()), back, main.key, main.cert, digest=False)
    assert back.getvalue() == data and opened.sha256 is None


def test_oaep_parameters_are_encoded_per_rfc_4055(main: Holder) -> None:
    """RSAES-OAEP with SHA-256 and MGF1-SHA-256, hash identifiers with NULL parameters (RFC 4055 2.1)."""
    sha256 = "300d06096086480165030402010500"
    expected = ("303c06092a864886f70d010107302f"  # rsaesOaep, RSAES-OAEP-params
                f"a00f{sha256}"  # [0] hashFunc
                f"a11c301a06092a864886f70d010108{sha256}")  # [1] maskGenFunc mgf1(sha256); [2] pSource default
    assert bytes.fromhex(expected) in seal_bytes(b"offer", [main.cert])


@pytest.mark.parametrize("chunk", [64 << 10, (64 << 10) + 1, 1 << 20])
def test_background_digest_survives_reused_buffers(chunk: int, main: Holder) -> None:
    """The plaintext hash runs on a helper thread while seal() reads the next chunk into its other
    buffer: a buffer reused too early would give a wrong SHA-256 (chunks large enough to go to the
    thread; sizes that end mid-buffer)."""
    data = os.urandom(5 * chunk + 12345)
    out = io.BytesIO()
    info = seal(io.BytesIO(data), out, [main.cert], chunk_size=chunk)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    back = io.BytesIO()
    assert unseal(io.BytesIO(out.getvalue()), back, main.key, main.cert, chunk_size=chunk).sha256 == info.sha256
    assert back.getvalue() == data


def test_push_sealer_caller_may_reuse_its_buffer_after_write(main: Holder) -> None:
    """Sealer.write() (the upload path) returns only once its chunk is hashed: the caller's buffer is
    overwritten right after each write here, and the hash must still be of what was written."""
    data = os.urandom(3 << 20)
    buf = bytearray(256 << 10)
    out = io.BytesIO()
    sealer = Sealer(out, [main.cert])
    for offset in range(0, len(data), len(buf)):
        piece = data[offset:offset + len(buf)]
        buf[:len(piece)] = piece
        sealer.write(memoryview(buf)[:len(piece)])
        buf[:] = b"\0" * len(buf)
    assert sealer.finish().sha256 == hashlib.sha256(data).hexdigest()
    assert _open(out.getvalue(), main) == data
