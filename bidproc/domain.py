"""The procurement vocabulary: tenders, bids, documents and where they stand.

These are plain values; persistence lives in :mod:`bidproc.metadata`, the flow in :mod:`bidproc.pipeline`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bidproc.errors import BidprocError, Code


class BidStatus(StrEnum):
    """Where a bid stands. ``DRAFT`` accepts files; everything after ``SUBMITTED`` is the pipeline's."""

    DRAFT = "draft"
    SUBMITTED = "submitted"  # receipt issued, waiting for the pipeline
    SEALED = "sealed"  # strict tender: receipt issued, sealed from the first byte, processed after the opening
    PROCESSING = "processing"
    PROCESSED = "processed"  # every stage done, nothing dangerous found
    QUARANTINED = "quarantined"  # malware found: kept as a trace, never read
    LATE = "late"  # upload ended after the deadline: kept, never opened as on time
    FAILED = "failed"  # a stage failed for good; the originals are kept

    @property
    def final(self) -> bool:
        return self in {BidStatus.PROCESSED, BidStatus.QUARANTINED, BidStatus.LATE, BidStatus.FAILED}


class Stage(StrEnum):
    """Pipeline stages, in the one order a bid travels through them."""

    INTAKE = "intake"
    SIGNATURE = "signature"
    ENCRYPTION = "encryption"
    ARCHIVE = "archive"


class Verdict(StrEnum):
    """What intake decided for one file or archive member."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime; naive datetimes are refused rather than guessed."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise BidprocError(Code.DEADLINE_INVALID, f"datetime {dt.isoformat()} has no time zone")
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00: no such UTC time
        raise BidprocError(Code.DEADLINE_INVALID, f"datetime {dt.isoformat()} is out of range") from None


_FORBIDDEN_NAME_CHARS = set('/\\:*?"<>|')
# Windows opens a device, not a file, under these names, whatever the extension ("nul.tar.gz", "CON .pdf"):
# a buyer saving the bid's files could never save one so named.
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "\u00b9", "\u00b2", "\u00b3"]}


def is_windows_device(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES


def name_key(name: str) -> str:
    """What two names of one bid may not share: a buyer's disk (Windows, macOS) tells case and Unicode
    normalisation apart from neither, so "Offre.pdf" would overwrite "offre.pdf" there."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def clean_file_name(name: str, *, max_length: int = 255, receiving: bool = True) -> str:
    """A bidder's file name as we keep it: NFC, no path, no control characters.

    Refuses rather than rewrites: a receipt must list the names the bidder sent. ``receiving`` False (a
    name looked up, not received): Windows device names pass, files received before they were refused
    stay readable.
    """
    if not name or name in {".", ".."}:
        raise BidprocError(Code.FILE_NAME_INVALID, "empty file name")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs"} for c in name):
        raise BidprocError(Code.FILE_NAME_INVALID, "file name contains control characters")
    if "\ufffd" in name:  # what a decoder leaves of bytes that were not UTF-8: not the name the bidder sent
        raise BidprocError(Code.FILE_NAME_INVALID, "file name is not valid UTF-8")
    if name != name.strip() or name.endswith("."):
        # Windows drops trailing dots and spaces: "x.pdf. " would become another file's name on a buyer's disk
        raise BidprocError(Code.FILE_NAME_INVALID, "file name starts or ends with a space, or ends with a dot")
    if _FORBIDDEN_NAME_CHARS & set(name):
        raise BidprocError(Code.FILE_NAME_INVALID, "file name contains a path separator or reserved character")
    if receiving and is_windows_device(name):
        raise BidprocError(Code.FILE_NAME_INVALID, "file name is a Windows device name (CON, NUL, COM1...)")
    nfc = unicodedata.normalize("NFC", name)
    if len(nfc.encode("utf-8")) > max_length:
        raise BidprocError(Code.FILE_NAME_INVALID, f"file name longer than {max_length} bytes")
    return nfc


@dataclass(frozen=True)
class Tender:
    """A tender as the desk and the API see it (the row is :class:`bidproc.metadata.models.TenderRow`)."""

    id: str
    tenant: str
    reference: str
    title: str
    buyer: str
    deadline: datetime
    intake_policy: Mapping[str, Any] | None = None  # IntakeLimits fields this tender changes
    opening: Mapping[str, Any] | None = None  # bidproc.encryption.tender_keys: how the tender opens
    opened_at: datetime | None = None
    contract: Mapping[str, Any] | None = None  # the contract's dates, which give the retention (archive.contract)

    def __post_init__(self) -> None:
        object.__setattr__(self, "deadline", utc(self.deadline))

    def is_late(self, upload_ended_at: datetime) -> bool:
        """French rule: what decides lateness is the time the upload *ended*."""
        return utc(upload_ended_at) > self.deadline


@dataclass(frozen=True)
class Document:
    """One file of a bid, as the pipeline reads it. ``sha256`` is of the original plaintext bytes;
    ``object_key`` where its (encrypted, later sealed) bytes are stored."""

    id: str
    bid_id: str
    name: str
    size: int
    sha256: str
    object_key: str
    verdict: Verdict = Verdict.PENDING
    code: Code | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """A bid's deposit receipt as stored: the exact bytes, their RFC 3161 token and the service's seal."""

    bid_id: str
    body: bytes  # canonical JSON: what the timestamp and the seal cover
    timestamp_token: bytes  # RFC 3161 TimeStampResp, DER
    seal: bytes  # CMS SignedData over body, DER
    created_at: datetime


@dataclass(frozen=True)
class Bid:
    """A bid as the desk answers it (the row, with its key and lease, stays in the metadata layer)."""

    id: str
    tender_id: str
    bidder: str
    status: BidStatus
    created_at: datetime
    upload_ended_at: datetime | None = None  # when the submission ended the upload (decides lateness)

    @property
    def late(self) -> bool:
        return self.status is BidStatus.LATE
