"""A hash-chained, append-only journal (Directive 2014/24/EU Annex IV (g): attempts must be detectable).

Each entry's hash is SHA-256 over its canonical JSON, which includes the previous entry's hash, so
editing, deleting or reordering any row breaks every hash after it. Appends take a lock on the single
``journal_head`` row, so concurrent API processes and workers keep one linear chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bidproc.metadata.models import JournalHeadRow, JournalRow

GENESIS = "0" * 64


def entry_hash(
    seq: int, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any], prev_hash: str
) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": detail,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(
    session: Session, *, actor: str, action: str, subject: str, now: datetime, detail: dict[str, Any] | None = None
) -> JournalRow:
    """Add one entry in the caller's transaction (so the entry and the change it records commit together)."""
    detail = detail or {}
    head = session.execute(select(JournalHeadRow).where(JournalHeadRow.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = JournalHeadRow(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    digest = entry_hash(seq, now, actor, action, subject, detail, head.hash)
    row = JournalRow(
        seq=seq, at=now, actor=actor, action=action, subject=subject, detail=detail, prev_hash=head.hash, hash=digest
    )
    session.add(row)
    head.seq, head.hash = seq, digest
    session.flush()
    return row


@dataclass(frozen=True)
class JournalCheck:
    ok: bool
    entries: int
    head: str
    broken_at: int | None = None
    reason: str = ""


def verify(session: Session) -> JournalCheck:
    """Recompute the whole chain; say where it breaks.

    The head is read first: on a running service (PostgreSQL, read committed) entries appended while the
    chain is read come after it, and must not look like a head pointing past deleted entries.
    """
    head = session.get(JournalHeadRow, 1)
    prev, count, expected_seq, at_head = GENESIS, 0, 1, None
    for row in session.execute(select(JournalRow).order_by(JournalRow.seq).execution_options(yield_per=1000)).scalars():
        count += 1
        if row.seq != expected_seq:
            return JournalCheck(False, count, prev, row.seq, f"entry {expected_seq} is missing")
        if row.prev_hash != prev:
            return JournalCheck(False, count, prev, row.seq, "previous-hash link does not match")
        if entry_hash(row.seq, row.at, row.actor, row.action, row.subject, row.detail, row.prev_hash) != row.hash:
            return JournalCheck(False, count, prev, row.seq, "entry content does not match its hash")
        if head is not None and row.seq == head.seq:
            at_head = row.hash
        prev, expected_seq = row.hash, expected_seq + 1
    if head is not None and head.seq > 0 and (head.seq > count or at_head != head.hash):
        return JournalCheck(False, count, prev, head.seq, "entries after the last one were deleted")
    return JournalCheck(True, count, prev)
