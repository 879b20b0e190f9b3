"""Each key works only within its role; each attempt outside it is refused and journalled."""

from __future__ import annotations

from datetime import timedelta

from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, tender


def test_role_boundaries_are_enforced_and_journalled(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    archivist = client(stack, "ville", "archivist")
    t = tender(stack, platform)
    bid = deposit(platform, t["id"], {"offre.txt": b"offre"}, submit=False)

    def forbidden(r: object) -> None:
        import httpx

        assert isinstance(r, httpx.Response)
        assert r.status_code == 403 and r.json()["code"] == "auth.forbidden_role", r.text

    # a platform key cannot open, change a deadline or read a document
    forbidden(platform.post(f"/v1/tenders/{t['id']}/open", json={"shares": []}))
    forbidden(platform.patch(f"/v1/tenders/{t['id']}", json={"deadline": t["deadline"]}))
    forbidden(platform.get(f"/v1/bids/{bid}/files/offre.txt"))
    forbidden(platform.get(f"/v1/bids/{bid}/sealed/offre.txt"))
    # a buyer key cannot run the deposit
    forbidden(buyer.post("/v1/tenders", json={"reference": "X", "title": "t", "buyer": "b",
                                              "deadline": t["deadline"]}))
    forbidden(buyer.post(f"/v1/tenders/{t['id']}/bids", json={"bidder": "x"}))
    forbidden(buyer.put(f"/v1/bids/{bid}/files/autre.txt", content=b"x"))
    forbidden(buyer.post(f"/v1/bids/{bid}/submit"))
    forbidden(buyer.get(f"/v1/bids/{bid}"))
    forbidden(buyer.get(f"/v1/bids/{bid}/receipt"))
    # an archivist key does neither
    forbidden(archivist.post(f"/v1/tenders/{t['id']}/open", json={"shares": []}))
    forbidden(archivist.get(f"/v1/bids/{bid}"))
    forbidden(archivist.patch(f"/v1/tenders/{t['id']}", json={"deadline": t["deadline"]}))
    entries = journal(stack, "access.forbidden_role")
    assert len(entries) == 13
    assert {(e.detail["role"], e.subject) for e in entries} >= {
        ("platform", "POST /v1/tenders/{tender_id}/open"), ("platform", "PATCH /v1/tenders/{tender_id}"),
        ("platform", "GET /v1/bids/{bid_id}/files/{name}"), ("buyer", "POST /v1/tenders"),
        ("archivist", "GET /v1/bids/{bid_id}")}
    assert all(e.detail["key_id"] for e in entries)
    # both roles read the tender; the buyer sees no share
    assert buyer.get(f"/v1/tenders/{t['id']}").json()["id"] == t["id"]
    assert "shares" not in buyer.get(f"/v1/tenders/{t['id']}").json()["opening"]
    # the buyer's own role works; another tenant's buyer finds nothing
    assert buyer.get(f"/v1/bids/{bid}/files/offre.txt").json()["code"] == "opening.too_early"
    other = client(stack, "autre-ville", "buyer")
    assert other.post(f"/v1/tenders/{t['id']}/open", json={"shares": []}).json()["code"] == "tender.not_found"


def test_deadline_changes_by_the_buyer_only_before_it_passes(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform, hours=1)
    later = (stack.clock() + timedelta(hours=3)).isoformat()
    r = buyer.patch(f"/v1/tenders/{t['id']}", json={"deadline": later})
    assert r.status_code == 200 and r.json()["deadline"] != t["deadline"], r.text
    changed = journal(stack, "tender.deadline.changed", t["id"])
    assert len(changed) == 1 and changed[0].detail["old"] == t["deadline"] and changed[0].detail["key_id"]
    past = (stack.clock() - timedelta(minutes=1)).isoformat()
    assert buyer.patch(f"/v1/tenders/{t['id']}", json={"deadline": past}).json()["code"] == "deadline.invalid"
    stack.clock.offset = timedelta(hours=3, seconds=1)  # the new deadline has passed
    r = buyer.patch(f"/v1/tenders/{t['id']}", json={"deadline": (stack.clock() + timedelta(hours=1)).isoformat()})
    assert r.status_code == 409 and r.json()["code"] == "deadline.passed", r.text
    refused = journal(stack, "tender.deadline.refused", t["id"])
    assert [e.detail["code"] for e in refused] == ["deadline.invalid", "deadline.passed"]  # each refusal
