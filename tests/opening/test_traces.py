"""Late and failed bids are sealed too, as a trace: whether their enqueue failed or the pipeline gave up."""

from __future__ import annotations

import io
import os
import time
from typing import Any

from sqlalchemy import select

from bidproc.desk.deposit import Desk
from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.encryption.envelope import unseal
from bidproc.metadata.models import BidRow, DocumentRow, StageRunRow, TenderRow
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, tender


def _wait_sealed(stack: Stack, bid: str, timeout: float = 60) -> StageRunRow:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with stack.rt.db.session() as s:
            run = s.get(StageRunRow, (bid, "encryption"))
            if run is not None:
                return run
        time.sleep(0.2)
    raise AssertionError(f"bid {bid} was never sealed\n{stack.worker_logs()}")


def _opened(stack: Stack, t: dict[str, Any], bid: str) -> dict[str, bytes]:
    """Each sealed original of ``bid``, opened with the tender's key (rebuilt from its one share)."""
    with stack.rt.db.session() as s:
        row = s.get(TenderRow, t["id"])
        assert row is not None and row.opening is not None
        opening = row.opening
        docs = list(s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid)).scalars())
    private = combine(tender_keys.committee_key(opening), [t["opening"]["shares"][0]["share"]])
    cert = tender_keys.certificates(opening)[0]
    out = {}
    for doc in docs:
        if not stack.rt.store.exists(doc.object_key):
            continue
        assert doc.object_key.endswith(".p7m"), doc.object_key
        plain = io.BytesIO()
        unseal(io.BytesIO(stack.rt.store.get_bytes(doc.object_key)), plain, private, cert)
        out[doc.name] = plain.getvalue()
    return out


def _no_service_key_object(stack: Stack, t: dict[str, Any], bid: str) -> None:
    with stack.rt.db.session() as s:
        row = s.get(BidRow, bid)
        assert row is not None and row.wrapped_key is None  # the data key is destroyed
    left = [k for k in stack.rt.store.keys(f"tenders/{t['id']}/bids/{bid}/") if k.endswith(".enc")]
    assert left == []


def test_a_late_bid_whose_enqueue_failed_is_sealed_by_the_reconciler(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    t = tender(stack, platform, hours=3 / 3600)  # its deadline passes in real time: workers see it too
    secret = os.urandom(300_000)
    bid = deposit(platform, t["id"], {"offre.bin": secret}, submit=False)
    with stack.rt.db.session() as s:
        tenant = s.get(TenderRow, t["id"]).tenant_id  # type: ignore[union-attr]
    while stack.clock() <= Desk(stack.rt).tender(tenant, t["id"]).deadline:
        time.sleep(0.1)
    # submitted through the desk without the API's enqueue: what a broker outage at submit leaves behind
    submitted, _ = Desk(stack.rt).submit(tenant, bid)
    assert submitted.status == "late"
    with stack.rt.db.session() as s:
        assert s.get(BidRow, bid).wrapped_key is not None  # type: ignore[union-attr]  # still the service's key
    stack.start_worker()
    run = _wait_sealed(stack, bid)
    assert run.result is not None and run.result["trace"] is True and run.result["missing"] == []
    _no_service_key_object(stack, t, bid)
    with stack.rt.db.session() as s:
        assert s.get(BidRow, bid).status == "late"  # type: ignore[union-attr]  # sealed, never processed
    assert _opened(stack, t, bid) == {"offre.bin": secret}
    destroyed = journal(stack, "bid.data_key.destroyed", bid)
    assert len(destroyed) == 1 and destroyed[0].detail["trace"] is True


def test_a_failed_bid_is_sealed_as_a_trace(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    t = tender(stack, platform)
    good = os.urandom(200_000)
    bid = deposit(platform, t["id"], {"offre.bin": good, "annexe.bin": b"annexe " * 1000}, submit=False)
    with stack.rt.db.session() as s:
        broken = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid,
                                                     DocumentRow.name == "annexe.bin")).scalar_one().object_key
    stack.rt.store.put_bytes(broken, b"not what was stored")  # altered in storage: intake can never read it
    assert platform.post(f"/v1/bids/{bid}/submit").status_code == 201
    stack.start_worker(BIDPROC_QUEUE_MAX_ATTEMPTS="1", BIDPROC_QUEUE_WAIT_FIRST_DELAY_SECONDS="0.2")
    assert stack.wait_status(platform, bid)["status"] == "failed"
    run = _wait_sealed(stack, bid)
    assert run.result is not None and run.result["trace"] is True
    assert run.result["unreadable"] == [broken]  # said, not hidden
    _no_service_key_object(stack, t, bid)
    assert _opened(stack, t, bid) == {"offre.bin": good}
    with stack.rt.db.session() as s:
        assert s.get(BidRow, bid).status == "failed"  # type: ignore[union-attr]
    assert journal(stack, "bid.failed", bid) and journal(stack, "bid.data_key.destroyed", bid)[0].detail[
        "unreadable"] == [broken]
