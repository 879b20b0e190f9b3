"""Write one version of a bid's evidence package into the archive store.

Layout (documented in the README, "Evidence packages"), under ``<bid prefix>/evidence/v<N>/``::

    objects/...            every stored object of the bid, byte for byte (opaque: role says what it is)
    manifest.json          each object's role, size, SHA-256, SHA-512; bid, tender, bidder, receipt
                           time, retention date
    manifest.json.p7s      detached CAdES over manifest.json by the service seal, with a signature timestamp
    certs/seal-chain.pem   the seal certificate and its root
    certs/tsa-chain.pem    the timestamp authority's certificate(s) and root
    SHA256SUMS             ``sha256sum -c`` lines for every file above
    SHA256SUMS.p7s         detached CMS SignedData over SHA256SUMS by the service seal
    SHA256SUMS.tsr         RFC 3161 TimeStampResp over SHA256SUMS's bytes

Writing is resumable and idempotent: each file is written once (the archive refuses other bytes
under a key it holds); a file already there is read back and used, and ``SHA256SUMS.tsr`` is written
last, so its presence means the version is complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bidproc.archive.worm import ArchiveStore
from bidproc.errors import BidprocError, Code

PROOFS = ("SHA256SUMS", "SHA256SUMS.p7s", "SHA256SUMS.tsr")
COMPLETE_MARKER = "SHA256SUMS.tsr"
READ_STEP = 8 << 20


@dataclass(frozen=True)
class Source:
    """One object to put into the package: where it goes, what it is, how to read it (again)."""

    path: str  # inside the package, e.g. "objects/files/<id>.enc"
    role: str
    size: int
    chunks: Callable[[], Iterable[bytes]]
    note: str = ""


@dataclass(frozen=True)
class Signer:
    """What seals and timestamps a package: callables, so tests and runtimes plug their own."""

    seal: Callable[[bytes], bytes]  # detached CMS SignedData (DER) over the bytes
    timestamp: Callable[[bytes], bytes]  # RFC 3161 TimeStampResp (DER) over a SHA-256 digest
    seal_chain_pem: bytes
    tsa_chain_pem: bytes
    # The manifest's seal; default: ``seal``. The runtime's adds a signature timestamp (CAdES B-T).
    seal_manifest: Callable[[bytes], bytes] | None = None


@dataclass(frozen=True)
class Written:
    prefix: str  # archive key prefix of the version, ending in "/"
    version: int
    manifest: dict[str, Any]
    resumed: bool  # some files were already there (a crashed or repeated run)


def bytes_source(path: str, role: str, data: bytes, note: str = "") -> Source:
    return Source(path, role, len(data), lambda: (data,), note)


def version_prefix(bid_prefix: str, version: int) -> str:
    return f"{bid_prefix}/evidence/v{version}/"


def versions(archive: ArchiveStore, bid_prefix: str) -> dict[int, bool]:
    """Existing versions of a bid's package and whether each is complete."""
    found: dict[int, bool] = {}
    for key in archive.keys(f"{bid_prefix}/evidence/v"):
        head, _, rest = key[len(bid_prefix) + len("/evidence/v"):].partition("/")
        if head.isdigit():
            found[int(head)] = found.get(int(head), False) or rest == COMPLETE_MARKER
    return found


class _Hashing:
    """The source's chunks, with their SHA-512 and size taken on the way (the store takes the SHA-256)."""

    def __init__(self, source: Source) -> None:
        self.source, self.sha512, self.size = source, hashlib.sha512(), 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.source.chunks():
            self.sha512.update(chunk)
            self.size += len(chunk)
            yield chunk


def _check_path(path: str) -> str:
    # sha256sum escapes names with a backslash or newline: such a name would not round-trip.
    parts = path.split("/")
    if "\\" in path or "\n" in path or "\r" in path or any(p in {"", ".", ".."} for p in parts):
        raise BidprocError(Code.REQUEST_INVALID, f"package path {path!r} is not allowed")
    return path


def sums_text(entries: Sequence[tuple[str, str]]) -> bytes:
    """``sha256sum`` output (text mode: two spaces), sorted by path."""
    return "".join(f"{digest}  {_check_path(path)}\n" for path, digest in sorted(entries)).encode()


class _Writer:
    def __init__(self, archive: ArchiveStore, prefix: str, retain_until: datetime) -> None:
        self.archive, self.prefix, self.retain_until = archive, prefix, retain_until
        self.written: dict[str, str] = {}  # package path -> sha256
        self.resumed = False
        self.present = set(archive.keys(prefix))  # one listing, not one request per file

    def existing(self, path: str) -> bytes | None:
        key = self.prefix + path
        if key not in self.present:
            return None
        self.resumed = True
        with self.archive.open(key) as fh:
            data = fh.read()
        self.written[path] = hashlib.sha256(data).hexdigest()
        return data

    def put_bytes(self, path: str, data: bytes) -> bytes:
        key = self.prefix + _check_path(path)
        self.written[path] = self.archive.put(key, (data,), len(data), self.retain_until,
                                              listed_absent=key not in self.present)
        return data

    def once(self, path: str, make: Callable[[], bytes]) -> bytes:
        """The file's bytes: read back if a previous run wrote it, else made and written now."""
        found = self.existing(path)
        return found if found is not None else self.put_bytes(path, make())


def write_package(
    archive: ArchiveStore,
    bid_prefix: str,
    version: int,
    sources: Sequence[Source],
    header: dict[str, Any],
    signer: Signer,
    retain_until: datetime,
    now: datetime,
) -> Written:
    """Write version ``version`` of the package (or finish it); return its manifest."""
    prefix = version_prefix(bid_prefix, version)
    w = _Writer(archive, prefix, retain_until)
    if prefix + COMPLETE_MARKER in w.present:
        manifest = json.loads(w.existing("manifest.json") or b"{}")
        return Written(prefix, version, manifest, True)
    objects = []
    for source in sorted(sources, key=lambda s: s.path):
        if not source.path.startswith("objects/"):
            raise BidprocError(Code.REQUEST_INVALID, f"{source.path}: package objects live under objects/")
        # One pass over the source: the store hashes (SHA-256) what it writes, we take SHA-512 and size.
        hashing = _Hashing(source)
        key = prefix + _check_path(source.path)
        sha256 = archive.put(key, hashing, source.size, retain_until, listed_absent=key not in w.present)
        if hashing.size != source.size:
            raise BidprocError(Code.STORAGE_INTEGRITY, f"{source.path}: read {hashing.size} bytes, "
                                                       f"the store lists {source.size}")
        w.written[source.path] = sha256
        entry = {"path": source.path, "role": source.role, "size": hashing.size, "sha256": sha256,
                 "sha512": hashing.sha512.hexdigest()}
        objects.append(entry | ({"note": source.note} if source.note else {}))
    fresh = {**header, "created_at": now.isoformat(), "objects": objects}
    manifest_bytes = w.once("manifest.json", lambda: json.dumps(fresh, indent=1, sort_keys=True,
                                                                ensure_ascii=False).encode() + b"\n")
    manifest = json.loads(manifest_bytes)
    if manifest.get("objects") != objects:  # a resumed run must describe the objects it wrote
        raise BidprocError(Code.STORAGE_INTEGRITY, f"{prefix}manifest.json does not list the package's objects")
    w.once("manifest.json.p7s", lambda: (signer.seal_manifest or signer.seal)(manifest_bytes))
    w.once("certs/seal-chain.pem", lambda: signer.seal_chain_pem)
    w.once("certs/tsa-chain.pem", lambda: signer.tsa_chain_pem)
    listed = [(path, digest) for path, digest in w.written.items() if path not in PROOFS]
    sums = w.once("SHA256SUMS", lambda: sums_text(listed))
    if sums != sums_text(listed):
        raise BidprocError(Code.STORAGE_INTEGRITY, f"{prefix}SHA256SUMS does not list the package's files")
    w.once("SHA256SUMS.p7s", lambda: signer.seal(sums))
    w.once(COMPLETE_MARKER, lambda: signer.timestamp(hashlib.sha256(sums).digest()))
    return Written(prefix, version, manifest, w.resumed)
