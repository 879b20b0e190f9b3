"""The deposit receipt (accusé de réception): the legal acknowledgement of a bid.

French rules (arrêté of 22 March 2019): it names the bidder, the buyer, the consultation, the date and
time of receipt (when the upload *ended*) and the detailed list of documents. Its exact bytes are
canonical JSON; an RFC 3161 token covers their SHA-256 and the service seals them (CMS), so anyone can
check it with openssl alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bidproc import __version__
from bidproc.archive.seal import Sealer
from bidproc.domain import Tender, utc
from bidproc.timestamps.tsa import Timestamp, TimestampAuthority


@dataclass(frozen=True)
class ReceivedFile:
    name: str
    size: int
    sha256: str
    received_at: datetime | None = None  # a backup copy's file: when it was received (each on its own)


@dataclass(frozen=True)
class DepositReceipt:
    body: bytes  # canonical JSON: what the timestamp and the seal cover
    timestamp: Timestamp
    seal: bytes  # CMS SignedData (DER), detached over body

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def receipt_body(
    *,
    tender: Tender,
    bid_id: str,
    bidder: str,
    files: Sequence[ReceivedFile],
    received_at: datetime,
    tsa_name: str,
    tsa_qualified: bool,
    backup: Sequence[ReceivedFile] = (),
) -> bytes:
    ordered = sorted(files, key=lambda f: f.name)
    document = {
        "type": "bidproc.deposit-receipt",
        "version": 1,
        "bid": bid_id,
        "bidder": bidder,
        "buyer": tender.buyer,
        "consultation": {
            "id": tender.id,
            "reference": tender.reference,
            "title": tender.title,
            "deadline": tender.deadline.isoformat(),
        },
        "received_at": utc(received_at).isoformat(timespec="microseconds"),
        "on_time": not tender.is_late(received_at),
        "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in ordered],
        "file_count": len(ordered),
        "total_size": sum(f.size for f in ordered),
        "timestamp_authority": {"name": tsa_name, "qualified": tsa_qualified},
        "service": f"bidproc {__version__}",
    }
    if backup:
        # The backup copy ("copie de sauvegarde", arrêté of 22 March 2019) is listed apart, each file with
        # its own time of receipt: it stands in for the bid only if it arrived in time (and the bid could
        # not be opened, or was late). Absent when there is none, so receipts without one do not change.
        times = [utc(f.received_at) for f in backup if f.received_at is not None]
        last = max(times) if times else utc(received_at)
        document["backup_copy"] = {
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256,
                       "received_at": utc(f.received_at or received_at).isoformat(timespec="microseconds")}
                      for f in sorted(backup, key=lambda f: f.name)],
            "received_at": last.isoformat(timespec="microseconds"),
            "on_time": not tender.is_late(last),
        }
    return (json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def issue_receipt(body: bytes, tsa: TimestampAuthority, sealer: Sealer, now: datetime) -> DepositReceipt:
    timestamp = tsa.timestamp(hashlib.sha256(body).digest(), now)
    return DepositReceipt(body=body, timestamp=timestamp, seal=sealer.seal(body))
