"""Sealing until the opening: CMS AuthEnvelopedData (RFC 5083) with AES-256-GCM (RFC 5084), streamed.

``seal`` encrypts a stream of any length to one or more certificates (RSA-OAEP or ECDH recipients,
see :mod:`bidproc.encryption.recipients`) in constant memory; ``openssl cms -decrypt -inform DER -in X
-recip cert.pem -inkey key.pem`` gives the exact bytes back. ``unseal`` reads what ``seal`` or
``openssl cms -encrypt -aes-256-gcm`` writes (definite or indefinite lengths).

Layout written (indefinite lengths from the outside in, so nothing needs to be known in advance)::

    ContentInfo { id-ct-authEnvelopedData, [0] AuthEnvelopedData {
        version 0, recipientInfos (DER, asn1crypto),
        EncryptedContentInfo { id-data, aes256-GCM { nonce(12), ICVlen 16 },
                               [0] { OCTET STRING chunk, OCTET STRING chunk, ... } },
        mac OCTET STRING (the 16-byte GCM tag) } }

GCM can only authenticate at the very end, so ``unseal`` has written unauthenticated plaintext to
``dst`` by the time it raises ``seal.tampered``: a caller that writes to a stream must discard it on
any error. :func:`unseal_to_path` does that itself (a private temporary file, renamed into place only
once the tag has been checked).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bidproc.encryption import ber
from bidproc.encryption.ber import EOC, INDEFINITE, malformed
from bidproc.encryption.digest import BackgroundSha256, NoDigest
from bidproc.encryption.recipients import PrivateKey, open_recipient_infos, recipient_infos_der
from bidproc.errors import BidprocError, Code

DEFAULT_CHUNK = 1 << 20
NONCE_LEN = 12  # RFC 5084 recommends 12 octets
TAG_LEN = 16
_OID_AUTH_ENVELOPED = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.23").dump()
_OID_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.1").dump()
_GCM_KEY_BYTES = {"2.16.840.1.101.3.4.1.6": 16, "2.16.840.1.101.3.4.1.26": 24, "2.16.840.1.101.3.4.1.46": 32}
_AES256_GCM = "2.16.840.1.101.3.4.1.46"
_MAX_RECIPIENT_INFOS = 1 << 20  # header parts are read whole, before anything is authenticated: bound them
_MAX_ALGORITHM = 4096


class GcmParameters(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 5084 GCMParameters; asn1crypto has no class for it. ICVlen DEFAULT 12 (we always write 16)."""

    _fields = [  # noqa: RUF012 (asn1crypto's declarative schema)
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


class _ContentAlgorithm(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("algorithm", core.ObjectIdentifier),
        ("parameters", GcmParameters),
    ]


@dataclass(frozen=True)
class SealInfo:
    size: int  # plaintext bytes
    sha256: str | None  # of the plaintext, hex (None when the caller asked for no digest)
    sealed_size: int  # envelope bytes written
    recipients: tuple[str, ...]  # SHA-256 fingerprints (hex) of the recipient certificates


@dataclass(frozen=True)
class UnsealInfo:
    size: int
    sha256: str | None


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _CountingWriter:
    def __init__(self, dst: _Sink) -> None:
        self._dst = dst
        self.count = 0

    def write(self, data: bytes) -> None:
        self._dst.write(data)
        self.count += len(data)


class _Digest(Protocol):
    def start(self, data: bytes | memoryview, /) -> None: ...

    def join(self) -> None: ...

    def hexdigest(self) -> str | None: ...

    def close(self) -> None: ...


def _digest(enabled: bool) -> _Digest:
    return BackgroundSha256() if enabled else NoDigest()


class Sealer:
    """Push-mode sealing: bytes are written in as they arrive (an upload), the envelope goes to ``sink``.

    The same layout as :func:`seal` (which is built on it); nothing but the envelope ever leaves it, so a
    caller that writes what it receives here from the first byte never stores plaintext. Call
    :meth:`finish` once, at the end; an abandoned ``Sealer`` leaves an envelope without its tag, which
    nothing opens.
    """

    def __init__(self, sink: _Sink, recipients: Sequence[x509.Certificate], *, digest: bool = True) -> None:
        cek, nonce = os.urandom(32), os.urandom(NONCE_LEN)
        infos = recipient_infos_der(list(recipients), cek)
        algorithm = _ContentAlgorithm({"algorithm": _AES256_GCM,
                                       "parameters": {"aes_nonce": nonce, "aes_icvlen": TAG_LEN}}).dump()
        self._out = _CountingWriter(sink)
        self._out.write(ber.header(ber.SEQUENCE, INDEFINITE) + _OID_AUTH_ENVELOPED
                        + ber.header(ber.CTX0_CONSTRUCTED, INDEFINITE) + ber.header(ber.SEQUENCE, INDEFINITE)
                        + ber.tlv(ber.INTEGER, b"\x00") + infos
                        + ber.header(ber.SEQUENCE, INDEFINITE) + _OID_DATA + algorithm
                        + ber.header(ber.CTX0_CONSTRUCTED, INDEFINITE))
        self._encryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
        # Python cannot wipe ``cek`` (immutable bytes): only the cipher object holds it from here on.
        del cek
        self._sha = _digest(digest)
        self._recipients = tuple(c.fingerprint(hashes.SHA256()).hex() for c in recipients)
        self.size = 0
        self._finished = False

    def write(self, plain: bytes | memoryview) -> None:
        self._write(plain, hold=False)

    def _write(self, plain: bytes | memoryview, *, hold: bool) -> None:
        """``hold``: the caller keeps ``plain`` unchanged until the next write or :meth:`finish`, so its
        hash may still run after this returns (:func:`seal` reads the next chunk meanwhile)."""
        if self._finished:
            raise ValueError("sealer already finished")
        if not len(plain):
            return  # an empty OCTET STRING chunk would be valid BER, but there is no need to write one
        self._sha.start(plain)  # hashed beside the encryption and the write below
        self.size += len(plain)
        try:
            ciphertext = self._encryptor.update(plain)  # GCM is a stream mode: as many bytes out as in
            self._out.write(ber.header(ber.OCTET_STRING, len(ciphertext)))
            self._out.write(ciphertext)
        except BaseException:
            self._sha.close()
            raise
        if not hold:
            self._sha.join()  # the caller may reuse ``plain``'s buffer once this returns

    def finish(self) -> SealInfo:
        if self._finished:
            raise ValueError("sealer already finished")
        self._finished = True
        self._encryptor.finalize()
        self._out.write(EOC + EOC + ber.tlv(ber.OCTET_STRING, self._encryptor.tag) + EOC + EOC + EOC)
        return SealInfo(size=self.size, sha256=self._sha.hexdigest(), sealed_size=self._out.count,
                        recipients=self._recipients)


def seal(src: BinaryIO, dst: BinaryIO, recipients: Sequence[x509.Certificate],
         *, chunk_size: int = DEFAULT_CHUNK, digest: bool = True) -> SealInfo:
    """Encrypts ``src`` to every certificate in ``recipients`` (any one private key opens it).

    ``digest=False`` skips the plaintext SHA-256 (it costs about half the throughput, see
    bench/seal.py) for a caller that already holds the content's hash from its receipt.
    """
    if not 1024 <= chunk_size <= 64 << 20:
        raise ValueError("chunk_size must be between 1 KiB and 64 MiB")
    sealer = Sealer(dst, recipients, digest=digest)
    # Two read buffers in turn: one is read into while the other's hash finishes (a buffer is read into
    # again only after the next chunk's write has joined its hash).
    views = (memoryview(bytearray(chunk_size)), memoryview(bytearray(chunk_size)))
    readinto = getattr(src, "readinto", None)  # files and BytesIO: no per-chunk allocation
    turn = 0
    try:
        while True:
            if readinto is not None:
                view = views[turn]
                n = readinto(view)
                plain: bytes | memoryview = view[:n]
                turn ^= 1
            else:
                plain = src.read(chunk_size)
                n = len(plain)
            if not n:
                break
            sealer._write(plain, hold=True)
    except BaseException:
        sealer._sha.close()
        raise
    return sealer.finish()


def seal_bytes(data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    out = io.BytesIO()
    seal(io.BytesIO(data), out, recipients)
    return out.getvalue()


def _gcm_parameters(der: bytes, key_bytes: int) -> tuple[bytes, int]:
    try:
        parsed = _ContentAlgorithm.load(der)
        oid = parsed["algorithm"].dotted
        nonce = parsed["parameters"]["aes_nonce"].native
        icv = parsed["parameters"]["aes_icvlen"].native
    except Exception as exc:  # asn1crypto raises assorted types on hostile input: all mean "malformed"
        raise malformed("content encryption is not AES-GCM with GCMParameters") from exc
    if _GCM_KEY_BYTES.get(oid) is None:
        raise malformed(f"content encryption {oid} is not AES-GCM")
    if _GCM_KEY_BYTES[oid] != key_bytes:
        raise BidprocError(Code.OPENING_KEY_MISMATCH, "the recipient key does not fit the content cipher")
    if not 8 <= len(nonce) <= 64 or icv not in (12, 13, 14, 15, 16):
        raise malformed("GCM nonce or tag length out of range")
    return nonce, icv


def unseal(src: BinaryIO, dst: BinaryIO, private_key: PrivateKey, cert: x509.Certificate,
           *, chunk_size: int = DEFAULT_CHUNK, digest: bool = True) -> UnsealInfo:
    """Decrypts an AuthEnvelopedData addressed to ``cert`` into ``dst``.

    Raises ``seal.tampered`` if the content or tag was altered, ``opening.key_mismatch`` if ``cert``
    is not a recipient or ``private_key`` does not open it, ``seal.malformed`` otherwise. On any error
    what was written to ``dst`` is unauthenticated and must be discarded (see :func:`unseal_to_path`).
    """
    r = ber.Reader(src)
    content_info = r.expect(ber.SEQUENCE, "ContentInfo")
    ci_start = r.offset
    oid = r.expect(ber.OID, "content type")
    if oid.raw + r.value(oid, 64, "content type") != _OID_AUTH_ENVELOPED:
        raise malformed("not a CMS AuthEnvelopedData (RFC 5083)")
    explicit = r.expect(ber.CTX0_CONSTRUCTED, "[0] content")
    explicit_start = r.offset
    aed = r.expect(ber.SEQUENCE, "AuthEnvelopedData")
    aed_start = r.offset
    version = r.expect(ber.INTEGER, "version")
    if r.value(version, 8, "version") != b"\x00":
        raise malformed("AuthEnvelopedData version is not 0")
    h = r.header()
    if h.tag == ber.CTX0_CONSTRUCTED:  # originatorInfo: certificates and CRLs we do not need
        r.whole(h, _MAX_RECIPIENT_INFOS, "originatorInfo")
        h = r.header()
    if h.tag != ber.SET:
        raise malformed("recipientInfos missing")
    infos_der = r.whole(h, _MAX_RECIPIENT_INFOS, "recipientInfos")
    try:
        infos = cms.RecipientInfos.load(infos_der)
        infos.native  # noqa: B018 (parse everything now: asn1crypto is lazy)
        cek = open_recipient_infos(infos, private_key, cert)
    except BidprocError:
        raise
    except Exception as exc:  # asn1crypto raises assorted types on hostile input: all mean "malformed"
        raise malformed("recipientInfos do not parse") from exc
    eci = r.expect(ber.SEQUENCE, "EncryptedContentInfo")
    eci_start = r.offset
    content_type = r.expect(ber.OID, "content type")
    if content_type.raw + r.value(content_type, 64, "content type") != _OID_DATA:
        raise malformed("sealed content type is not id-data")
    nonce, icv = _gcm_parameters(r.whole(r.expect(ber.SEQUENCE, "algorithm"), _MAX_ALGORITHM, "algorithm"), len(cek))
    content = r.header()
    if content.tag not in (ber.CTX0_CONSTRUCTED, ber.CTX0_PRIMITIVE):
        raise malformed("no encrypted content (detached content is not supported)")
    decryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce, min_tag_length=icv)).decryptor()
    sha, size = _digest(digest), 0
    try:
        for piece in r.octet_chunks(content, chunk_size):
            plain = decryptor.update(piece)
            sha.start(plain)  # hashed beside the write (``plain`` is a fresh buffer each time)
            dst.write(plain)
            size += len(plain)
        sha.join()
    except BaseException:
        sha.close()
        raise
    r.end_of(eci, eci_start, "EncryptedContentInfo")
    h = r.header()
    if h.tag == 0xA1:
        # authAttrs would be GCM's associated data, but they follow the content: one pass cannot
        # authenticate them first. Neither bidproc nor openssl writes them.
        raise malformed("authenticated attributes are not supported")
    if h.tag != ber.OCTET_STRING or h.length != icv:
        raise malformed("mac missing or of the wrong length")
    tag = r.read_exact(h.length)
    try:
        decryptor.finalize_with_tag(tag)
    except InvalidTag as exc:
        raise BidprocError(Code.SEAL_TAMPERED, "the sealed content fails authentication (altered or truncated)") \
            from exc
    # unauthAttrs [2] may follow: not covered by the tag, so skipped (bounded) and never used
    if aed.length == INDEFINITE:
        h = r.header()
        if h.tag == 0xA2:
            r.whole(h, _MAX_RECIPIENT_INFOS, "unauthAttrs")
            h = r.header()
        if (h.tag, h.length) != (0, 0):
            raise malformed("AuthEnvelopedData has trailing content")
    else:
        if r.offset - aed_start < aed.length:
            h = r.header()
            if h.tag != 0xA2:
                raise malformed("AuthEnvelopedData has trailing content")
            r.whole(h, _MAX_RECIPIENT_INFOS, "unauthAttrs")
        if r.offset - aed_start != aed.length:
            raise malformed("AuthEnvelopedData length does not match its content")
    r.end_of(explicit, explicit_start, "[0] content")
    r.end_of(content_info, ci_start, "ContentInfo")
    if src.read(1):
        raise malformed("bytes after the envelope")
    return UnsealInfo(size=size, sha256=sha.hexdigest())


def unseal_to_path(src: BinaryIO, path: Path, private_key: PrivateKey, cert: x509.Certificate,
                   *, chunk_size: int = DEFAULT_CHUNK, digest: bool = True) -> UnsealInfo:
    """Like :func:`unseal`, but ``path`` appears only once the content is authenticated.

    Plaintext goes to a 0600 temporary file beside ``path``; on any failure that file is removed, so
    no unauthenticated byte stays on disk under a name anyone would open.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            info = unseal(src, fh, private_key, cert, chunk_size=chunk_size, digest=digest)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return info
