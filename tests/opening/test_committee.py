"""Committee 2-of-3: sealed until the deadline, opened by two genuine shares, late bids kept apart."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.metadata.models import BidRow, TenderRow
from tests.foundation.stack import Stack
from tests.opening.helpers import certificate, client, deposit, journal, open_tender, tender
from tests.services import ROOT

COMMITTEE = {"mode": "committee", "threshold": 2, "members": ["alice", "bob", "carol"]}


def test_committee_two_of_three(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform, COMMITTEE)
    shares = {s["member"]: s["share"] for s in t["opening"]["shares"]}
    assert set(shares) == {"alice", "bob", "carol"} and len(set(shares.values())) == 3
    shown = platform.get(f"/v1/tenders/{t['id']}").json()["opening"]
    assert "shares" not in shown and shown["threshold"] == 2 and shown["members"] == ["alice", "bob", "carol"]
    assert not any(v in str(shown) for v in shares.values())
    other = tender(stack, platform, COMMITTEE)
    other_share = other["opening"]["shares"][0]["share"]

    big = os.urandom(3 * (1 << 20) + 777)
    on_time = {deposit(platform, t["id"], {"prix.bin": big, "memoire.txt": b"memoire technique"}): big,
               deposit(platform, t["id"], {"prix.bin": b"offre 2" * 1000}): b"offre 2" * 1000}
    late = deposit(platform, t["id"], {"prix.bin": b"trop tard"}, submit=False)
    for bid in on_time:
        status = stack.wait_status(platform, bid)
        assert status["status"] == "processed" and "encryption" in status["stages"], status

    # before the deadline: even two valid shares are refused, and nothing is readable
    two = [shares["alice"], shares["carol"]]
    r = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": two})
    assert r.status_code == 409 and r.json()["code"] == "opening.too_early", r.text
    first = next(iter(on_time))
    assert buyer.get(f"/v1/bids/{first}/files/prix.bin").json()["code"] == "opening.too_early"
    assert buyer.get(f"/v1/bids/{first}/sealed/prix.bin").json()["code"] == "opening.too_early"

    stack.clock.offset = timedelta(hours=1, seconds=1)
    assert platform.post(f"/v1/bids/{late}/submit").status_code == 409  # received late: kept apart
    end = time.monotonic() + 60  # a late bid is not processed, but sealed all the same
    while time.monotonic() < end and journal(stack, "bid.data_key.destroyed", late) == []:
        time.sleep(0.2)
    with stack.rt.db.session() as s:
        row = s.get(BidRow, late)
        assert row is not None and row.wrapped_key is None and row.status == "late", stack.worker_logs()
    for attempt in ([shares["bob"]],  # one share of two
                    [shares["bob"], shares["bob"]],  # the same share twice
                    [shares["bob"], other_share],  # a share of another tender
                    [shares["bob"], _forged(shares["alice"])],  # an altered share
                    []):
        r = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": attempt})
        assert r.status_code == 403 and r.json()["code"] == "opening.quorum", (attempt, r.text)
        assert shares["bob"] not in r.text
    with stack.rt.db.session() as s:
        assert all(s.get(BidRow, b).opened_at is None for b in on_time)  # nothing was opened
    refused = journal(stack, "opening.refused", t["id"])
    assert [e.detail["code"] for e in refused] == ["opening.too_early"] + ["opening.quorum"] * 5
    assert not any(v in str(e.detail) for e in refused for v in shares.values())

    run = open_tender(buyer, t["id"], [shares["carol"], shares["alice"]])
    assert run["state"] == "done" and run["progress"] == {"done": 2, "total": 2}, run
    assert sorted(run["opened"]) == sorted(on_time) and run["late"] == [late], run
    assert run["journal_anchored_seq"] and run["errors"] == []
    for bid, data in on_time.items():
        got = buyer.get(f"/v1/bids/{bid}/files/prix.bin")
        assert got.status_code == 200 and got.content == data
    assert buyer.get(f"/v1/bids/{first}/files/memoire.txt").content == b"memoire technique"
    assert buyer.get(f"/v1/bids/{late}/files/prix.bin").json()["code"] == "opening.too_early"
    assert len(journal(stack, "document.read", first)) == 2
    opened = journal(stack, "tender.opened", t["id"])
    assert len(opened) == 1 and opened[0].detail["late"] == [late]
    anchors = journal(stack, "journal.anchored")
    assert anchors and anchors[-1].seq > opened[0].seq
    # opening again (here with bidproc open, against the API) is harmless: nothing is decrypted twice
    for member in ("bob", "alice"):
        (tmp_path / f"{member}.share").write_text(shares[member] + "\n")
    cli = subprocess.run([sys.executable, "-m", "bidproc.cli", "open", "--tender", t["id"], "--share",
                          str(tmp_path / "bob.share"), "--share", str(tmp_path / "alice.share"), "--url",
                          str(buyer.base_url), "--key", buyer.headers["Authorization"].removeprefix("Bearer ")],
                         cwd=ROOT, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert sorted(json.loads(cli.stdout)["opened"]) == sorted(on_time) and len(journal(stack, "bid.opened")) == 2


def test_member_certificates_get_their_share_sealed(stack: Stack, tmp_path: Path) -> None:
    platform = client(stack, "ville", "platform")
    key_pem, cert_pem = certificate("ec", "Alice Martin")
    (tmp_path / "alice.key").write_bytes(key_pem)
    (tmp_path / "alice.pem").write_bytes(cert_pem)
    t = tender(stack, platform, {**COMMITTEE, "threshold": 2, "member_certificates": {"alice": cert_pem.decode()}})
    given = {s["member"]: s for s in t["opening"]["shares"]}
    assert "share" not in given["alice"] and "share" in given["bob"]
    (tmp_path / "alice.p7m").write_bytes(base64.b64decode(given["alice"]["sealed_share"]))
    alice = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(tmp_path / "alice.p7m"),
                            "-inkey", str(tmp_path / "alice.key"), "-recip", str(tmp_path / "alice.pem")],
                           capture_output=True, text=True, check=True).stdout.strip()
    with stack.rt.db.session() as s:
        row = s.get(TenderRow, t["id"])
        assert row is not None and row.opening is not None
        assert alice not in json.dumps(row.opening) and given["bob"]["share"] not in json.dumps(row.opening)
        record = tender_keys.committee_key(row.opening)
    combine(record, [alice, given["bob"]["share"]])  # alice's decrypted share is a genuine one


def _forged(share: str) -> str:
    words = share.split()
    words[5] = "academic" if words[5] != "academic" else "acid"
    return " ".join(words)


def test_opening_requests_that_cannot_be_honoured_are_refused(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    base = {"reference": "R-strict", "title": "t", "buyer": "b", "deadline": "2099-01-01T00:00:00Z"}
    for body in ({**base, "process_at": "openning"},  # a misspelt mode: never silently downgraded
                 {**base, "opening": {**COMMITTEE, "treshold": 3}},  # a misspelt field
                 {**base, "opening": {**COMMITTEE, "threshold": 1}},  # 1 of 3: everyone alone could open
                 {**base, "opening": {**COMMITTEE, "threshold": 4}},
                 {**base, "opening": {"mode": "recipients", "certificates": ["not a certificate"]}},
                 {**base, "opening": {"mode": "recipients", "certificates": []}}):
        r = platform.post("/v1/tenders", json=body)
        assert r.status_code == 400 and r.json()["code"] == "request.invalid", (body, r.text)
    with stack.rt.db.session() as s:
        assert s.query(TenderRow).count() == 0
