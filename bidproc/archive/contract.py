"""A tender's contract dates, set by its buyer, and the retention they give the tender's evidence packages.

``tenders.contract`` holds ``{"kind", "signed", "performance_end"}`` (dates as ``YYYY-MM-DD``; absent
while not known). Packages written afterwards are locked until the date the rule gives
(:class:`~bidproc.archive.retention.RetentionPolicy`); packages already written have their COMPLIANCE
retention extended to it, never shortened (the conservative default they got usually runs longer).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bidproc.archive.evidence import extend_retention
from bidproc.archive.retention import ContractKind, RetentionPolicy, stored_form
from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import ArchiveStore, open_archive
from bidproc.config import ArchiveSettings
from bidproc.desk.deposit import Desk, journals_denials
from bidproc.desk.tenants import Caller
from bidproc.domain import Tender
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, ReceiptRow, TenderRow
from bidproc.runtime import Runtime


def check(policy: RetentionPolicy, settings: ArchiveSettings) -> RetentionPolicy:
    if policy.performance_end is not None and policy.kind is not ContractKind.WORKS:
        raise BidprocError(Code.REQUEST_INVALID, "the end of performance counts for works contracts only")
    if policy.contract_signed and policy.performance_end and policy.performance_end < policy.contract_signed:
        raise BidprocError(Code.REQUEST_INVALID, "the end of performance cannot come before the signature")
    try:  # the dates alone give the date (or the receipt does, which is always a date of ours)
        policy.retain_until(datetime.now(UTC), settings)
    except ValueError:  # e.g. works ending 9999-12-31: ten years after it is past the calendar
        # Refused before anything is stored: stored, it would break every later archive of the tender.
        raise BidprocError(Code.REQUEST_INVALID, "these dates give a retention past the year 9999") from None
    return policy


def apply_retention(rt: Runtime, tender_id: str, policy: RetentionPolicy,
                    archive: ArchiveStore | None = None) -> dict[str, Any]:
    """Extend the locks of every package of the tender's bids to the date ``policy`` gives (per bid: the
    default counts from each receipt). Returns per-bid results (for the journal and the answer)."""
    archive = archive or open_archive(rt.settings)
    with rt.db.session() as s:
        receipts = list(s.execute(select(ReceiptRow.bid_id, ReceiptRow.body).join(
            BidRow, BidRow.id == ReceiptRow.bid_id).where(BidRow.tender_id == tender_id)
            .order_by(ReceiptRow.bid_id)).all())
    results: dict[str, Any] = {}
    for bid_id, body in receipts:
        received = datetime.fromisoformat(json.loads(body)["received_at"])
        until, rule = policy.retain_until(received, rt.settings.archive)
        extended, kept = extend_retention(archive, bid_prefix(tender_id, bid_id), until)
        results[bid_id] = {"until": until.isoformat(), "rule": rule, "extended": extended, "kept": kept}
    return results


class ContractDesk(Desk):
    @journals_denials
    def set_contract(self, caller: Caller, tender_id: str, policy: RetentionPolicy) -> Tender:
        """Store the tender's contract dates (journalled, old and new), then extend its packages' locks.

        The dates are committed first: if the archive store is down, the call fails with
        ``storage.unavailable`` and the same call again finishes the work (extending is idempotent).
        """
        check(policy, self.rt.settings.archive)
        now = self.rt.clock()
        with self.rt.db.session() as s:
            self._tender(s, caller.tenant, tender_id)  # another tenant's tender is "not found", journalled
            tender = s.execute(select(TenderRow).where(TenderRow.id == tender_id).with_for_update()).scalar_one()
            old, tender.contract = tender.contract, stored_form(policy)
            append(s, actor=caller.tenant, action="tender.contract.set", subject=tender_id, now=now,
                   detail={"old": old, "new": tender.contract, "key_id": caller.key_id})
        results = apply_retention(self.rt, tender_id, policy)
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action="evidence.retention", subject=tender_id, now=self.rt.clock(),
                   detail={"bids": results})
            row = s.get(TenderRow, tender_id)
            assert row is not None
            return row.value()
