"""A real bid for archive tests: tenant, tender, files uploaded encrypted, receipt, then the archive stage.

Intake and signature stages need clamd and are not what is tested here; their outputs (a rendition, a
validation report) are put in the store the way the pipeline puts them, then the pipeline's own archive
stage (``stages.archive_manifest``) runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bidproc.archive.store import bid_prefix
from bidproc.config import Settings, load_settings
from bidproc.desk.deposit import Desk
from bidproc.desk.tenants import create_api_key
from bidproc.metadata.models import DocumentRow, ReceiptRow, TenantRow
from bidproc.pipeline import stages
from bidproc.runtime import Runtime


@dataclass
class ArchivedBid:
    rt: Runtime
    tender_id: str
    bid_id: str
    files: dict[str, bytes]

    @property
    def prefix(self) -> str:
        return bid_prefix(self.tender_id, self.bid_id)


def local_settings(tmp: Path, **env: str) -> Settings:
    return load_settings(env={"BIDPROC_SERVICE_DATA_DIR": str(tmp / "data"),
                              "BIDPROC_SERVICE_SERVICE_KEY": os.urandom(32).hex(), **env})


def archived_bid(rt: Runtime, files: dict[str, bytes] | None = None, reference: str = "T-1") -> ArchivedBid:
    files = files or {"offre.pdf": b"%PDF-1.7 offre " * 50, "annexe.csv": b"a;b\n1;2\n"}
    desk = Desk(rt)
    rt.migrate()  # idempotent: a test may archive several bids in one database
    create_api_key(rt.db, "platform-a", rt.clock())
    with rt.db.session() as s:
        tenant = s.execute(select(TenantRow).where(TenantRow.name == "platform-a")).scalar_one().id
    tender = desk.create_tender(tenant, reference, "Travaux", "Ville", rt.clock() + timedelta(days=2))
    bid = desk.create_bid(tenant, tender.id, "ACME")
    for name, data in files.items():
        upload = desk.begin_upload(tenant, bid.id, name)
        upload.write(data)
        upload.commit()
    desk.submit(tenant, bid.id)
    prefix = bid_prefix(tender.id, bid.id)
    key = rt.service_key.unwrap(_wrapped(rt, bid.id))
    with rt.db.session() as s:
        docs = [row.value() for row in s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid.id)).scalars()]
        receipt_row = s.get(ReceiptRow, bid.id)
        assert receipt_row is not None
        receipt = receipt_row.value()
        s.expunge_all()
    stages.put_encrypted(rt, key, f"{prefix}/renditions/{docs[0].id}/0123456789abcdef.enc", b"rendition")
    stages.put_encrypted(rt, key, f"{prefix}/reports/{docs[0].id}.json.enc", b'{"bottom_line": true}')
    stages.archive_manifest(rt, docs, receipt, prefix, {"intake": {}, "signature": {}})
    return ArchivedBid(rt, tender.id, bid.id, files)


def _wrapped(rt: Runtime, bid_id: str) -> bytes:
    from bidproc.metadata.models import BidRow

    with rt.db.session() as s:
        row = s.get(BidRow, bid_id)
        assert row is not None
        return row.wrapped_key


def now() -> datetime:
    return datetime.now(UTC)
