"""A tender's own intake policy: its allow-list decides, through the pipeline."""

from __future__ import annotations

import json

from bidproc.demo import sample_pdf
from tests.foundation.stack import Stack


def test_tender_allow_list_applies_to_its_bids(stack: Stack) -> None:
    stack.start_worker()
    http = stack.client()
    bad = http.post("/v1/tenders", json={"reference": "P-0", "title": "t", "buyer": "b",
                                         "deadline": "2099-01-01T00:00:00+00:00", "intake": {"allowed_kinds": ["dwg"]}})
    assert bad.status_code == 400 and bad.json()["code"] == "request.invalid"
    for loosen in ({"max_ratio": 1e9}, {"parse_timeout_seconds": float("inf")}, {"max_entries": 10**9}):
        r = http.post("/v1/tenders", content=json.dumps(
            {"reference": "P-L", "title": "t", "buyer": "b", "deadline": "2099-01-01T00:00:00+00:00",
             "intake": loosen}), headers={"content-type": "application/json"})
        assert r.status_code in {400, 422} and r.json()["code"] == "request.invalid", (loosen, r.text)
    r = http.post("/v1/tenders", json={"reference": "P-1", "title": "t", "buyer": "b",
                                       "deadline": "2099-01-01T00:00:00+00:00", "intake": {"allowed_kinds": ["pdf"]}})
    assert r.status_code == 201 and r.json()["intake"] == {"allowed_kinds": ["pdf"]}
    tender = r.json()
    assert http.get(f"/v1/tenders/{tender['id']}").json()["intake"] == {"allowed_kinds": ["pdf"]}
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    http.put(f"/v1/bids/{bid['id']}/files/offre.pdf", content=sample_pdf())
    http.put(f"/v1/bids/{bid['id']}/files/notes.txt", content=b"plain text is not allowed here")
    assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
    status = stack.wait_status(http, bid["id"])
    verdicts = {f["name"]: (f["verdict"], f["code"]) for f in status["files"]}
    assert verdicts == {"offre.pdf": ("accepted", None), "notes.txt": ("rejected", "type.not_allowed")}
