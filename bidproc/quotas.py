"""What a platform (tenant) has stored: the figure its storage quota is checked against."""

from __future__ import annotations

from sqlalchemy import func, select

from bidproc.metadata.db import Database
from bidproc.metadata.models import BidRow, DocumentRow, TenderRow


def stored_bytes(db: Database, tenant: str) -> int:
    """Bytes of every file received for the tenant's tenders (late and quarantined bids included: kept)."""
    with db.session() as s:
        total = s.execute(
            select(func.coalesce(func.sum(DocumentRow.size), 0))
            .join(BidRow, BidRow.id == DocumentRow.bid_id)
            .join(TenderRow, TenderRow.id == BidRow.tender_id)
            .where(TenderRow.tenant_id == tenant)
        ).scalar()
    return int(total or 0)
