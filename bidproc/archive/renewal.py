"""Evidence records of archived packages: the first one per batch, then renewals, all in the archive store.

Records live beside the packages, under ``<bid prefix>/evidence/records/v<N>/<seq>.ers`` (each
renewal is a new object: the store never overwrites), locked until the package's retention date.
``bidproc evidence renew`` runs this: every complete package version without a record gets one (one
hash tree and one timestamp for the whole batch), and every record whose newest timestamp's TSA
certificate expires within ``before`` is renewed (again one tree for the batch). A record whose newest
chain uses a weaker algorithm than ``algorithm`` gets a hash-tree renewal instead (RFC 4998 §5.3: a new
chain under the stronger algorithm); an algorithm is never downgraded. The data object a chain under
SHA-256 covers is the package's ``SHA256SUMS``; under a stronger algorithm H it is the list of H(file)
of every file of the package (``data_object``: every file re-read and re-hashed, so the new chain
binds the files themselves even once SHA-256 weakens), stored beside the record as
``<seq>.SHA512SUMS`` (``sha512sum -c`` format) so that a verifier can name the file that changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bidproc.archive.package import COMPLETE_MARKER, sums_text
from bidproc.archive.records import (
    ALGORITHMS,
    Timestamper,
    last_tsa_expiry,
    new_records,
    record_algorithm,
    renew,
    renew_hash_tree,
)
from bidproc.archive.worm import ArchiveStore


@dataclass
class RenewSummary:
    created: list[str] = field(default_factory=list)  # package prefixes that got their first record
    renewed: list[str] = field(default_factory=list)
    rehashed: list[str] = field(default_factory=list)  # hash-tree renewals (a stronger algorithm)


def complete_packages(archive: ArchiveStore, under: str = "tenders/") -> list[str]:
    """Prefixes (ending in '/') of every complete package version."""
    tail = "/" + COMPLETE_MARKER
    return sorted(k[: -len(COMPLETE_MARKER)] for k in archive.keys(under)
                  if k.endswith(tail) and "/evidence/v" in k)


def records_prefix(package: str) -> str:
    bid, _, version = package.rstrip("/").rpartition("/evidence/")
    return f"{bid}/evidence/records/{version}/"


def latest_record(archive: ArchiveStore, package: str) -> tuple[str, bytes] | None:
    keys = sorted(k for k in archive.keys(records_prefix(package)) if k.endswith(".ers"))
    if not keys:
        return None
    with archive.open(keys[-1]) as fh:
        return keys[-1], fh.read()


def _read(archive: ArchiveStore, key: str) -> bytes:
    with archive.open(key) as fh:
        return fh.read()


def listing_name(algorithm: str) -> str:
    return f"{algorithm.upper()}SUMS"


def data_object(archive: ArchiveStore, package: str, algorithm: str) -> bytes:
    """What a chain under ``algorithm`` covers for this package version (see the module's doc)."""
    if algorithm == "sha256":
        return _read(archive, package + "SHA256SUMS")
    entries = []
    for key in sorted(archive.keys(package)):
        digest = hashlib.new(algorithm)
        with archive.open(key) as fh:
            while piece := fh.read(1 << 20):
                digest.update(piece)
        entries.append((key[len(package):], digest.hexdigest()))
    return sums_text(entries)


def _retention(archive: ArchiveStore, package: str) -> datetime:
    manifest = json.loads(_read(archive, package + "manifest.json"))
    return datetime.fromisoformat(manifest["retention"]["until"])


def _put(archive: ArchiveStore, key: str, der: bytes, until: datetime) -> None:
    archive.put(key, (der,), len(der), until)


def renew_all(archive: ArchiveStore, timestamp: Timestamper, now: datetime, before: timedelta,
              force: bool = False, algorithm: str = "sha256") -> RenewSummary:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"hash algorithm must be one of {', '.join(ALGORITHMS)}")
    summary = RenewSummary()
    fresh: list[str] = []
    due: dict[str, list[tuple[str, tuple[str, bytes]]]] = {}  # per algorithm: one tree per batch and algorithm
    weaker: list[tuple[str, tuple[str, bytes]]] = []
    for package in complete_packages(archive):
        latest = latest_record(archive, package)
        if latest is None:
            fresh.append(package)
            continue
        current = record_algorithm(latest[1])
        if current in ALGORITHMS and ALGORITHMS.index(current) < ALGORITHMS.index(algorithm):
            weaker.append((package, latest))
            continue
        expiry = last_tsa_expiry(latest[1])
        if force or expiry is None or expiry - now < before:
            due.setdefault(current, []).append((package, latest))
    if fresh:
        datas = [data_object(archive, p, algorithm) for p in fresh]
        for package, data, der in zip(fresh, datas, new_records(datas, timestamp, algorithm), strict=True):
            _put_listing(archive, records_prefix(package) + "0001", data, algorithm, _retention(archive, package))
            _put(archive, records_prefix(package) + "0001.ers", der, _retention(archive, package))
            summary.created.append(package)
    for batch in due.values():
        _put_next(archive, batch, renew([der for _, (_, der) in batch], timestamp), summary.renewed)
    if weaker:
        datas = [data_object(archive, p, algorithm) for p, _ in weaker]
        _put_next(archive, weaker, renew_hash_tree([der for _, (_, der) in weaker], datas, timestamp, algorithm),
                  summary.rehashed, [(d, algorithm) for d in datas])
    return summary


def _put_listing(archive: ArchiveStore, stem: str, data: bytes, algorithm: str, until: datetime) -> None:
    if algorithm != "sha256":  # SHA256SUMS is in the package already
        _put(archive, f"{stem}.{listing_name(algorithm)}", data, until)


def _put_next(archive: ArchiveStore, batch: list[tuple[str, tuple[str, bytes]]], renewed: list[bytes],
              done: list[str], listings: list[tuple[bytes, str]] | None = None) -> None:
    """Each renewed record as the next ``000N.ers`` beside its predecessor (never overwriting it), with
    the data object its new chain covers when that is a new-algorithm list."""
    for i, ((package, (key, _)), der) in enumerate(zip(batch, renewed, strict=True)):
        seq = int(key.rsplit("/", 1)[1].split(".")[0]) + 1
        stem, until = records_prefix(package) + f"{seq:04d}", _retention(archive, package)
        if listings:
            _put_listing(archive, stem, *listings[i], until)
        _put(archive, stem + ".ers", der, until)
        done.append(package)
