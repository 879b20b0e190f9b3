"""Evidence records of archived packages: the first one per batch, then renewals, all in the archive store.

Records live beside the packages, under ``<bid prefix>/evidence/records/v<N>/<seq>.ers`` (each
renewal is a new object: the store never overwrites), locked until the package's retention date.
``bidproc evidence renew`` runs this: every complete package version without a record gets one (one
hash tree and one timestamp for the whole batch), and every record whose newest timestamp's TSA
certificate expires within ``before`` is renewed (again one tree for the batch). A record whose newest
chain uses a weaker algorithm than ``algorithm`` gets a hash-tree renewal instead (RFC 4998 §5.3: the
package's ``SHA256SUMS`` re-hashed, a new chain); an algorithm is never downgraded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bidproc.archive.package import COMPLETE_MARKER
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
        datas = [_read(archive, p + "SHA256SUMS") for p in fresh]
        for package, der in zip(fresh, new_records(datas, timestamp, algorithm), strict=True):
            _put(archive, records_prefix(package) + "0001.ers", der, _retention(archive, package))
            summary.created.append(package)
    for batch in due.values():
        _put_next(archive, batch, renew([der for _, (_, der) in batch], timestamp), summary.renewed)
    if weaker:
        datas = [_read(archive, p + "SHA256SUMS") for p, _ in weaker]
        _put_next(archive, weaker, renew_hash_tree([der for _, (_, der) in weaker], datas, timestamp, algorithm),
                  summary.rehashed)
    return summary


def _put_next(archive: ArchiveStore, batch: list[tuple[str, tuple[str, bytes]]], renewed: list[bytes],
              done: list[str]) -> None:
    """Each renewed record as the next ``000N.ers`` beside its predecessor (never overwriting it)."""
    for (package, (key, _)), der in zip(batch, renewed, strict=True):
        seq = int(key.rsplit("/", 1)[1].split(".")[0]) + 1
        _put(archive, records_prefix(package) + f"{seq:04d}.ers", der, _retention(archive, package))
        done.append(package)
