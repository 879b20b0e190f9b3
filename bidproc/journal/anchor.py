"""Anchoring: the journal's head hash, timestamped (RFC 3161) and recorded in the journal itself.

A hash chain alone stops naive edits, but whoever can write the database could recompute it. Once a
head hash carries a TSA's signed time, rewriting anything before it means forging a timestamp.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bidproc.errors import BidprocError
from bidproc.journal.chain import append
from bidproc.metadata.models import JournalHeadRow, JournalRow
from bidproc.timestamps.tsa import TimestampAuthority
from bidproc.timestamps.verify import verify_response

ANCHORED = "journal.anchored"


def anchor_digest(head_hash: str) -> bytes:
    return hashlib.sha256(head_hash.encode("ascii")).digest()


def last_anchor_time(session: Session) -> datetime | None:
    return session.execute(select(JournalRow.at).where(JournalRow.action == ANCHORED)
                           .order_by(JournalRow.seq.desc()).limit(1)).scalar_one_or_none()


def anchor(db_session: Any, tsa: TimestampAuthority, now: datetime, actor: str = "service") -> int:
    """Timestamp the current head and journal the token; returns the anchored sequence number.

    ``db_session`` is the Database.session factory: the TSA is called between two short transactions.
    """
    with db_session() as s:
        head = s.get(JournalHeadRow, 1)
        seq, head_hash = (head.seq, head.hash) if head is not None else (0, "0" * 64)
    stamp = tsa.timestamp(anchor_digest(head_hash), now)
    with db_session() as s:
        append(s, actor=actor, action=ANCHORED, subject="journal", now=now,
               detail={"anchored_seq": seq, "anchored_hash": head_hash, "tsa": stamp.tsa,
                       "time": stamp.time.isoformat(), "token": base64.b64encode(stamp.response_der).decode()})
    return seq


def anchor_if_due(db_session: Any, tsa: TimestampAuthority, now: datetime, every_seconds: int) -> int | None:
    if every_seconds <= 0:
        return None
    with db_session() as s:
        last = last_anchor_time(s)
    if last is not None and now - last < timedelta(seconds=every_seconds):
        return None
    return anchor(db_session, tsa, now)


@dataclass(frozen=True)
class AnchorCheck:
    anchors: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_anchors(session: Session, roots: tuple[bytes, ...], window: int = 100_000) -> AnchorCheck:
    """Each anchor's token must be valid and cover the hash the chain really had at that point."""
    recent: deque[tuple[int, str]] = deque(maxlen=window)
    problems: list[str] = []
    count = 0
    query = select(JournalRow).order_by(JournalRow.seq).execution_options(yield_per=1000)
    for row in session.execute(query).scalars():
        if row.action == ANCHORED:
            count += 1
            seq, claimed = int(row.detail["anchored_seq"]), str(row.detail["anchored_hash"])
            actual = next((h for s, h in reversed(recent) if s == seq), "0" * 64 if seq == 0 else None)
            if actual is None:
                problems.append(f"anchor at {row.seq}: entry {seq} not found")
            elif actual != claimed:
                problems.append(f"anchor at {row.seq}: the chain at entry {seq} is not what was timestamped")
            try:
                verify_response(base64.b64decode(row.detail["token"]), anchor_digest(claimed), roots)
            except BidprocError as exc:
                problems.append(f"anchor at {row.seq}: {exc.message}")
        recent.append((row.seq, row.hash))
    return AnchorCheck(count, tuple(problems))
