"""The backup copy: sealed with the bid, opened in place of a quarantined or late bid when it arrived in
time, crypto-shredded otherwise; every decision journalled."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx

from bidproc.metadata.models import BidRow
from tests.foundation.stack import Stack
from tests.opening.helpers import certificate, client, journal, open_tender, tender

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _bid(http: httpx.Client, tender_id: str) -> str:
    return str(http.post(f"/v1/tenders/{tender_id}/bids", json={"bidder": f"B-{uuid.uuid4().hex[:6]}"}).json()["id"])


def _put(http: httpx.Client, bid: str, where: str, name: str, data: bytes) -> None:
    r = http.put(f"/v1/bids/{bid}/{where}/{name}", content=data)
    assert r.status_code == 201, r.text


def _wait_journal(stack: Stack, action: str, subject: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not journal(stack, action, subject):
        assert time.monotonic() < end, stack.worker_logs()
        time.sleep(0.2)


def test_backup_copies_are_opened_in_place_or_destroyed(stack: Stack) -> None:
    stack.start_worker()
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    share = t["opening"]["shares"][0]["share"]

    clean = _bid(platform, t["id"])  # opened: its backup is destroyed
    _put(platform, clean, "files", "offre.txt", b"offre A")
    _put(platform, clean, "backup", "offre.txt", b"sauvegarde A")  # the same name as a file of the bid
    r = platform.post(f"/v1/bids/{clean}/submit")
    assert r.status_code == 201
    copy = r.json()["backup_copy"]
    assert copy["on_time"] is True and [f["name"] for f in copy["files"]] == ["offre.txt"]
    assert [f["name"] for f in r.json()["files"]] == ["offre.txt"]

    infected = _bid(platform, t["id"])  # quarantined: its backup stands in for it
    _put(platform, infected, "files", "offre.com", EICAR)
    _put(platform, infected, "backup", "offre.txt", b"sauvegarde B")
    assert platform.post(f"/v1/bids/{infected}/submit").status_code == 201

    late_main = _bid(platform, t["id"])  # the backup in time, the bid late: the backup stands in for it
    _put(platform, late_main, "backup", "offre.txt", b"sauvegarde C")
    _put(platform, late_main, "files", "offre.txt", b"offre C")
    all_late = _bid(platform, t["id"])  # both late: the backup is destroyed
    _put(platform, all_late, "files", "offre.txt", b"offre D")
    assert stack.wait_status(platform, clean)["status"] == "processed"
    assert stack.wait_status(platform, infected)["status"] == "quarantined"
    with stack.rt.db.session() as s:
        assert s.get(BidRow, clean).backup_key is not None  # type: ignore[union-attr]  # sealed, kept apart
    keys = list(stack.rt.store.keys(f"tenders/{t['id']}/bids/{clean}/"))
    assert [k for k in keys if "/sealed/backup/" in k and k.endswith(".bak")] and not [
        k for k in keys if k.endswith(".enc")]

    stack.clock.offset = timedelta(hours=1, seconds=1)
    _put(platform, all_late, "backup", "offre.txt", b"sauvegarde D")
    for bid in (late_main, all_late):
        assert platform.post(f"/v1/bids/{bid}/submit").status_code == 409
        _wait_journal(stack, "bid.data_key.destroyed", bid)

    run = open_tender(buyer, t["id"], [share])
    assert run["state"] == "done" and run["opened"] == [clean] and run["quarantined"] == [infected], run
    fates = {b["bid"]: b for b in run["backups"]}
    assert {b: f["backup"] for b, f in fates.items()} == {clean: "destroyed", infected: "opened",
                                                          late_main: "opened", all_late: "destroyed"}, run
    with stack.rt.db.session() as s:
        assert all(s.get(BidRow, b).backup_key is None for b in fates)  # type: ignore[union-attr]
    for bid in (clean, all_late):  # crypto-shredded: the key is erased, the objects deleted
        assert not [k for k in stack.rt.store.keys(f"tenders/{t['id']}/bids/{bid}/") if "/backup/" in k]
        assert journal(stack, "backup.destroyed", bid)[0].detail["reason"]
    replacements = {fates[infected]["replacement"]: b"sauvegarde B", fates[late_main]["replacement"]: b"sauvegarde C"}
    for bid, original in zip(replacements, (infected, late_main), strict=True):
        assert journal(stack, "backup.opened", original)[0].detail["replacement"] == bid
        status = stack.wait_status(platform, bid)  # intake and verification ran on the backup
        assert status["status"] == "processed" and status["outcome"] and "encryption" in status["stages"], status
        assert status["files"][0]["verdict"] == "accepted"

    again = open_tender(buyer, t["id"], [share])  # the backups, processed and sealed, are opened now
    assert sorted(again["opened"]) == sorted([clean, *replacements]) and again["backups"] == [], again
    for bid, data in replacements.items():
        assert buyer.get(f"/v1/bids/{bid}/files/offre.txt").content == data
        assert [f["name"] for f in buyer.get(f"/v1/bids/{bid}/files").json()["files"]] == ["offre.txt"]
    assert buyer.get(f"/v1/bids/{clean}/files/offre.txt").content == b"offre A"  # the bid, not its backup


def test_a_backup_copy_needs_a_committee_tender(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    _, cert = certificate("ec", "Acheteur")
    t = tender(stack, platform, {"mode": "recipients", "certificates": [cert.decode()]})
    bid = _bid(platform, t["id"])
    r = platform.put(f"/v1/bids/{bid}/backup/offre.txt", content=b"x")
    assert r.status_code == 409 and r.json()["code"] == "opening.offline", r.text
