"""The write-once rules both archive stores keep (local directory and S3 Object Lock): key shape, no
shorter retention, no other content under an archived key. Apart from ``worm`` so that ``worm_s3`` can
use them while ``worm.open_archive`` chooses between the two stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bidproc.errors import BidprocError, Code


@dataclass(frozen=True)
class Lock:
    mode: str | None  # "COMPLIANCE" on S3; None when the store has no retention (local)
    retain_until: datetime | None
    legal_hold: bool


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} or p.startswith(".") for p in parts):
        raise BidprocError(Code.REQUEST_INVALID, f"invalid archive key {key!r}")
    return key


def _refuse_shorter(key: str, current: datetime | None, wanted: datetime) -> None:
    # The contract (real S3 and MinIO in COMPLIANCE mode) refuses this; moto_server does not, so the
    # refusal lives here too and is tested against this code, not against the server.
    if current is not None and wanted < current:
        raise BidprocError(Code.STORAGE_IMMUTABLE, f"{key}: retention cannot be shortened "
                                                   f"from {current.isoformat()} to {wanted.isoformat()}")



def _same_or_refuse(key: str, archived: str | None, chunks: Iterable[bytes]) -> str:
    """An object is already under ``key``: the same bytes again are fine, other bytes are refused."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    if digest.hexdigest() != archived:
        raise BidprocError(Code.STORAGE_IMMUTABLE, f"{key} is archived with other content")
    return archived
