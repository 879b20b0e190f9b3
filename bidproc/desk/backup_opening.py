"""The backup copy at the opening: opened in place of its bid, or destroyed (arrêté of 22 March 2019).

It is opened only when the bid was quarantined for malware, could not be opened (its pipeline failed,
or unsealing it failed), or arrived late while the backup arrived in time. Then its files become a new
bid (``outcome.backup_of`` names the one it replaces), submitted to the pipeline: intake and signature
verification run on them as on any bid, the encryption stage seals them, and the next opening run
opens them. Otherwise its key is erased (crypto-shredding, see :mod:`bidproc.encryption.backup`) and
its objects deleted. Both are journalled (``backup.opened``, ``backup.destroyed``) on the bid.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bidproc.archive.store import bid_prefix
from bidproc.domain import BidStatus
from bidproc.encryption.backup import open_backup_key, reencrypt
from bidproc.encryption.recipients import PrivateKey
from bidproc.journal.chain import append
from bidproc.metadata.models import BackupFileRow, BidRow, DocumentRow, ReceiptRow, TenderRow
from bidproc.runtime import Runtime


def fate(bid: BidRow, tender: TenderRow, backups: list[BackupFileRow], opened: set[str],
         unopenable: set[str]) -> tuple[str, str] | None:
    """("open" | "destroy", why) for a bid whose backup is sealed; None: not decided yet (in the pipeline)."""
    if bid.id in opened:
        return "destroy", "the bid was opened"
    if bid.status == BidStatus.QUARANTINED.value:
        return "open", "the bid was quarantined for malware"
    if bid.id in unopenable or bid.status == BidStatus.FAILED.value:
        return "open", "the bid could not be opened"
    if bid.late or bid.status == BidStatus.LATE.value:
        if backups and all(b.uploaded_at <= tender.deadline for b in backups):
            return "open", "the bid arrived late, its backup copy in time"
        return "destroy", "the bid arrived late, and so did its backup copy"
    return None


def destroy(rt: Runtime, actor: str, run_id: str, bid_id: str, why: str) -> bool:
    """Erase the backup's key (its objects are undecryptable from then on, anywhere), then its objects."""
    with rt.db.session() as s:
        bid = s.execute(select(BidRow).where(BidRow.id == bid_id).with_for_update()).scalar_one()
        if bid.backup_key is None:
            return False  # decided by an earlier run
        files = list(s.execute(select(BackupFileRow).where(BackupFileRow.bid_id == bid_id)).scalars())
        bid.backup_key = None
        append(s, actor=actor, action="backup.destroyed", subject=bid_id, now=rt.clock(),
               detail={"reason": why, "run": run_id, "files": [{"sha256": f.sha256, "size": f.size} for f in files]})
    for f in files:  # noise now (their key is gone); archived copies stay, as undecryptable as these
        rt.store.delete(f.object_key)
    return True


def open_in_place(rt: Runtime, actor: str, run_id: str, bid: BidRow, private: PrivateKey, cert: Any,
                  why: str) -> str | None:
    """Unseal the backup of ``bid`` into a new bid submitted to the pipeline; returns its id (None if an
    earlier run did it)."""
    with rt.db.session() as s:
        envelope = s.get(BidRow, bid.id).backup_key  # type: ignore[union-attr]
        files = list(s.execute(select(BackupFileRow).where(BackupFileRow.bid_id == bid.id)
                               .order_by(BackupFileRow.name)).scalars())
        receipt = s.get(ReceiptRow, bid.id)
    if envelope is None or receipt is None:
        return None
    own = open_backup_key(envelope, private, cert)
    data_key, wrapped = rt.service_key.new_data_key()
    new_id = str(uuid.uuid4())
    docs = []
    for f in files:  # checked against the receipt's SHA-256 on the way (strict: a wrong file never appears)
        doc_id = str(uuid.uuid4())
        target = f"{bid_prefix(bid.tender_id, new_id)}/files/{doc_id}.enc"
        reencrypt(rt, own, f.object_key, data_key, target, f.sha256, strict=True)
        docs.append(DocumentRow(id=doc_id, bid_id=new_id, name=f.name, size=f.size, sha256=f.sha256,
                                object_key=target, uploaded_at=f.uploaded_at, verdict="pending"))
    del own  # Python cannot wipe it; no reference outlives this frame
    now = rt.clock()
    with rt.db.session() as s:
        row = s.execute(select(BidRow).where(BidRow.id == bid.id).with_for_update()).scalar_one()
        if row.backup_key is None:  # another run replaced it first: ours are orphans nobody can decrypt
            return None
        received = max((f.uploaded_at for f in files), default=now)
        s.add(BidRow(id=new_id, tender_id=bid.tender_id, bidder=bid.bidder, status=BidStatus.SUBMITTED.value,
                     wrapped_key=wrapped, created_at=now, updated_at=now, upload_ended_at=received, late=False,
                     attempts=0, outcome={"backup_of": bid.id, "reason": why}))
        s.flush()
        s.add_all(docs)
        # the bid's receipt lists the backup's files with their times of receipt: it is the proof for both
        s.add(ReceiptRow(bid_id=new_id, body=receipt.body, timestamp_token=receipt.timestamp_token,
                         seal=receipt.seal, created_at=now))
        row.backup_key = None
        row.outcome = {**(row.outcome or {}), "replaced_by_backup": new_id}
        append(s, actor=actor, action="backup.opened", subject=bid.id, now=now,
               detail={"reason": why, "run": run_id, "replacement": new_id, "files": len(docs)})
        append(s, actor=actor, action="bid.submitted", subject=new_id, now=now,
               detail={"backup_of": bid.id, "files": len(docs), "tender": bid.tender_id})
    return new_id
