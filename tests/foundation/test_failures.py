"""Bids that cannot be processed end as failed, once; late bids are never processed."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bidproc.config import ClamdSettings
from bidproc.metadata.models import DocumentRow, JournalRow, StageRunRow
from tests.foundation.stack import Stack


def test_a_bid_whose_retries_run_out_is_marked_failed_once(tmp_path: Path, s3_endpoint: str, redis_url: str,
                                                            postgres_url: str, clamd_settings: ClamdSettings) -> None:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings, env={"BIDPROC_QUEUE_MAX_ATTEMPTS": "2"})
    try:
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        with stack.rt.db.session() as s:
            doc = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid["id"])).scalar_one()
        stack.rt.store.delete(doc.object_key)  # the stored file is gone: no retry can succeed
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        stack.start_worker()
        status = stack.wait_status(http, bid["id"], timeout=120)
        assert status["status"] == "failed"
        assert status["outcome"]["error"] in {"storage.not_found", "pipeline.attempts_exhausted"}
        time.sleep(3)  # further deliveries (reconciler, retries) find a final bid and do nothing
        with stack.rt.db.session() as s:
            failed = s.execute(select(func.count()).select_from(JournalRow).where(
                JournalRow.subject == bid["id"], JournalRow.action == "bid.failed")).scalar()
        assert failed == 1
    finally:
        stack.close()


def test_late_bid_is_never_processed(stack: Stack) -> None:
    stack.start_worker()
    http = stack.client()
    tender = stack.new_tender(http, hours=1)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Tardif"}).json()
    assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
    stack.clock.offset = timedelta(hours=2)
    assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 409
    time.sleep(4)  # the reconciler runs every second in this stack
    assert http.get(f"/v1/bids/{bid['id']}").json()["status"] == "late"
    end = time.monotonic() + 30
    while True:
        with stack.rt.db.session() as s:
            runs = s.execute(select(StageRunRow.stage).where(StageRunRow.bid_id == bid["id"])).scalars().all()
        if len(runs) >= 2 or time.monotonic() > end:
            break
        time.sleep(0.2)
    # sealed like every bid (its data key destroyed) and archived (its evidence package), never inspected
    # or validated
    assert sorted(runs) == ["archive", "encryption"]
