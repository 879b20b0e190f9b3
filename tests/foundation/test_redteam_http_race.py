"""Red team, HTTP: requests that race each other at the deadline, on the real stack (PostgreSQL, S3, Redis).

A slow transaction is made real, not simulated: a second PostgreSQL connection holds the row lock that
a request needs (the tender's row, or the journal's head that every write takes), exactly as a slow
commit or a long journal write would. The property checked is the one a bidder and a buyer rely on:
once everything has settled, a bid is on time if and only if it was received by the tender's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

from bidproc.metadata.models import JournalRow, ReceiptRow
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, tender


@contextmanager
def row_locked(stack: Stack, sql: str, *params: str) -> Iterator[None]:
    """Another transaction holds the rows ``sql`` (a SELECT ... FOR UPDATE) selects until the block ends."""
    dsn = stack.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as holder:
        assert holder.execute(sql, params).fetchall(), "the rows to hold exist"
        try:
            yield
        finally:
            holder.rollback()


def _settled(platform: httpx.Client, tender_id: str, bid: str) -> tuple[dict[str, Any], datetime, datetime]:
    status = platform.get(f"/v1/bids/{bid}").json()
    deadline = datetime.fromisoformat(platform.get(f"/v1/tenders/{tender_id}").json()["deadline"])
    return status, datetime.fromisoformat(status["received_at"]), deadline


def test_a_deadline_change_that_waited_for_a_lock_never_commits_a_deadline_already_past(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    soon = stack.clock() + timedelta(seconds=0.5)  # in the future when asked, in the past once applied
    with ThreadPoolExecutor(1) as pool, row_locked(stack, "SELECT id FROM tenders WHERE id = %s FOR UPDATE",
                                                   t["id"]):
        patch = pool.submit(buyer.patch, f"/v1/tenders/{t['id']}", json={"deadline": soon.isoformat()})
        time.sleep(1.2)
    answer = patch.result()
    deadline = datetime.fromisoformat(platform.get(f"/v1/tenders/{t['id']}").json()["deadline"])
    assert not (answer.status_code == 200 and deadline < stack.clock()), \
        f"a deadline already past when it took effect: {deadline} ({answer.text})"
    assert answer.status_code == 400 and answer.json()["code"] == "deadline.invalid", answer.text
    assert deadline == datetime.fromisoformat(t["deadline"])
    refused = journal(stack, "tender.deadline.refused", t["id"])
    assert [e.detail["code"] for e in refused] == ["deadline.invalid"], "the refused change is journalled"


def test_a_bid_submitted_while_the_deadline_moves_earlier_is_judged_against_the_deadline_that_won(
        stack: Stack) -> None:
    # The buyer's change takes the tender's row, then waits on the journal (held by a slow writer); the
    # new deadline passes meanwhile; a bid is submitted and also waits on the journal. The change commits
    # first: the bid was received after the deadline that now stands, so it is late, receipt included.
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    bid = deposit(platform, t["id"], {"offre.txt": b"offre"}, submit=False)
    soon = stack.clock() + timedelta(seconds=1)
    with ThreadPoolExecutor(2) as pool:
        with row_locked(stack, "SELECT id FROM journal_head FOR UPDATE"):
            patch = pool.submit(buyer.patch, f"/v1/tenders/{t['id']}", json={"deadline": soon.isoformat()})
            time.sleep(1.5)  # the change holds the tender's row and waits; its deadline passes
            submit = pool.submit(platform.post, f"/v1/bids/{bid}/submit")
            time.sleep(1.0)
        patched, submitted = patch.result(), submit.result()
    assert patched.status_code == 200, patched.text
    status, received, deadline = _settled(platform, t["id"], bid)
    assert deadline == soon
    assert status["late"] == (received > deadline), (status, deadline)
    assert received > deadline and status["late"] and status["status"] == "late"
    assert submitted.status_code == 409 and submitted.json()["code"] == "deadline.passed", submitted.text
    receipt = submitted.json()["receipt"]
    assert receipt["on_time"] is False and datetime.fromisoformat(receipt["consultation"]["deadline"]) == soon, receipt


def test_a_deadline_moved_later_during_a_submit_gives_a_receipt_with_the_new_deadline(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    bid = deposit(platform, t["id"], {"offre.txt": b"offre"}, submit=False)
    later = stack.clock() + timedelta(hours=5)
    with ThreadPoolExecutor(2) as pool:
        with row_locked(stack, "SELECT id FROM journal_head FOR UPDATE"):
            patch = pool.submit(buyer.patch, f"/v1/tenders/{t['id']}", json={"deadline": later.isoformat()})
            time.sleep(0.5)
            submit = pool.submit(platform.post, f"/v1/bids/{bid}/submit")
            time.sleep(0.5)
        assert patch.result().status_code == 200
        submitted = submit.result()
    assert submitted.status_code == 201, submitted.text
    assert datetime.fromisoformat(submitted.json()["consultation"]["deadline"]) == later, "the deadline that stands"


def test_concurrent_submits_of_one_bid_give_one_receipt(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    t = tender(stack, platform)
    for _ in range(3):
        bid = deposit(platform, t["id"], {"offre.txt": b"offre", "annexe.txt": b"annexe"}, submit=False)
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(platform.post, [f"/v1/bids/{bid}/submit"] * 6))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] + [409] * 5, [r.text for r in answers]
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"bid.already_submitted"}
        with stack.rt.db.session() as s:
            receipts = s.execute(select(func.count()).select_from(ReceiptRow).where(ReceiptRow.bid_id == bid))
            submitted = s.execute(select(func.count()).select_from(JournalRow).where(
                JournalRow.subject == bid, JournalRow.action == "bid.submitted"))
            assert (receipts.scalar(), submitted.scalar()) == (1, 1)
        issued = next(r for r in answers if r.status_code == 201)
        assert platform.get(f"/v1/bids/{bid}/receipt").content == issued.content


def test_an_upload_racing_a_submit_is_either_in_the_receipt_or_refused(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    t = tender(stack, platform)
    for i in range(4):
        bid = deposit(platform, t["id"], {"offre.txt": b"offre"}, submit=False)
        with ThreadPoolExecutor(2) as pool:
            up = pool.submit(platform.put, f"/v1/bids/{bid}/files/late{i}.txt", content=b"x" * 200_000)
            sub = pool.submit(platform.post, f"/v1/bids/{bid}/submit")
            uploaded, submitted = up.result(), sub.result()
        if submitted.status_code != 201:  # the upload landed during the submit: submit again
            assert submitted.status_code == 409 and submitted.json()["code"] == "bid.changed", submitted.text
            submitted = platform.post(f"/v1/bids/{bid}/submit")
        assert submitted.status_code == 201, submitted.text
        listed = {f["name"] for f in submitted.json()["files"]}
        stored = {f["name"] for f in platform.get(f"/v1/bids/{bid}").json()["files"]}
        assert listed == stored, "the receipt lists exactly the files the bid holds"
        if uploaded.status_code == 201:
            assert f"late{i}.txt" in listed
        else:
            assert uploaded.json()["code"] == "bid.already_submitted", uploaded.text
