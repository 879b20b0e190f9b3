"""A bid's backup copy, sealed so that it can be destroyed for good: crypto-shredding.

The backup's files are not sealed each to the tender's keys like the bid's (whoever rebuilds the
tender's key could then open them forever, from any copy, the WORM archive's included). They are
re-encrypted under one fresh AES-256 key of their own (bidproc's chunked AES-256-GCM, as at upload),
and only that key is sealed (CMS) to the tender's opening keys, into the bid's row (``backup_key``),
never into the object store or the archive. At the opening:

- the backup is not needed: the sealed key is erased (and the objects deleted from the working store);
  every copy of the objects, archived ones included, is noise from then on;
- it is needed: the key is unsealed with the tender's private key and the files are read with it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bidproc.archive.store import StoredObject
from bidproc.encryption.envelope import seal_bytes, unseal
from bidproc.encryption.recipients import PrivateKey
from bidproc.encryption.stream import DecryptingReader, Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime

BACKUP_SUFFIX = ".bak"
STEP = 1 << 20


def backup_target(prefix: str, source: str) -> str:
    """``<prefix>/backup/<doc>.enc`` -> ``<prefix>/sealed/backup/<doc>.bak``."""
    return f"{prefix}/sealed/backup/{source.rsplit('/', 1)[1].removesuffix('.enc')}{BACKUP_SUFFIX}"


@dataclass
class SealedBackup:
    key_envelope: bytes  # the backup's key, CMS AuthEnvelopedData to the opening certificates
    mapping: dict[str, str] = field(default_factory=dict)  # source -> sealed object
    altered: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def reencrypt(rt: Runtime, source_key: bytes, source: str, target_key: bytes, target: str,
              expected_sha256: str | None, *, strict: bool) -> bool:
    """Stream ``source`` (under ``source_key``) into ``target`` (under ``target_key``); True if it hashed to
    ``expected_sha256``. ``strict``: a mismatch raises and ``target`` never appears."""
    reader = DecryptingReader(source_key, StoredObject(rt.store, source), context=source.encode())
    with rt.store.open_writer(target) as writer:
        encryptor = Encryptor(target_key, writer.write, context=target.encode())
        while piece := reader.read(STEP):
            encryptor.write(piece)
        digest = encryptor.finish()
        matches = expected_sha256 is None or digest == expected_sha256
        if strict and not matches:
            raise BidprocError(Code.STORAGE_INTEGRITY, f"{source} does not hash to the received {expected_sha256}")
    return matches


def seal_backup(rt: Runtime, data_key: bytes, prefix: str, certs: list[x509.Certificate],
                files: Mapping[str, str], *, trace: bool) -> SealedBackup | None:
    """Seal the backup's objects (``files``: object key -> SHA-256 received); None when there is none."""
    sources = sorted(k for k in rt.store.keys(f"{prefix}/backup/") if k.endswith(".enc"))
    missing = set(files) - set(sources)
    if missing and not trace:
        raise BidprocError(Code.STORAGE_NOT_FOUND, f"{len(missing)} file(s) of the backup copy are not in storage")
    if not sources:
        return None
    own = AESGCM.generate_key(256)
    sealed = SealedBackup(seal_bytes(own, certs))
    for source in sources:
        target = backup_target(prefix, source)
        try:
            if not reencrypt(rt, data_key, source, own, target, files.get(source), strict=not trace):
                sealed.altered.append(target)
        except BidprocError as exc:
            if not trace or exc.code is not Code.STORAGE_INTEGRITY:
                raise
            sealed.unreadable.append(source)  # see stage.run: a trace's object that no longer decrypts
            continue
        sealed.mapping[source] = target
    del own  # Python cannot wipe it; its only lasting form is the envelope
    return sealed


def open_backup_key(envelope: bytes, private: PrivateKey, cert: x509.Certificate) -> bytes:
    out = io.BytesIO()
    unseal(io.BytesIO(envelope), out, private, cert)
    return out.getvalue()
