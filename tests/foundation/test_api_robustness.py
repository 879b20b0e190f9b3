"""Hostile and odd requests get a documented ``{code, message}`` answer, never a 500 or FastAPI's own shape.

Each case below was found by a hostile-input probe against the running service (issue 13).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bidproc.api.guards import FailureThrottle, UploadRate
from bidproc.config import ClamdSettings
from bidproc.errors import BidprocError, Code
from bidproc.metadata.models import JournalRow
from tests.foundation.stack import Stack

TENDER = {"reference": "R", "title": "t", "buyer": "b", "deadline": "2099-01-01T00:00:00+00:00"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, clamd_settings: ClamdSettings,
        postgres_url: str, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("api"), s3_endpoint, clamd_settings, env={
        "BIDPROC_API_MAX_CONCURRENT_UPLOADS": "6",
        "BIDPROC_API_MAX_CONCURRENT_UPLOADS_PER_TENANT": "2",
        "BIDPROC_API_UPLOAD_IDLE_SECONDS": "2",
        "BIDPROC_API_AUTH_MAX_FAILURES": "5",
        "BIDPROC_API_MAX_FILES_PER_BID": "3",
    })
    yield stack
    stack.close()


def _raw(http: httpx.Client, body: bytes | str, path: str = "/v1/tenders") -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": "application/json"})


def _is_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str), body
    assert set(body) <= {"code", "message", "detail"} and isinstance(body.get("detail", []), list), body
    assert len(r.content) < 8192, "an error answer never echoes a large input"


@pytest.mark.parametrize("body", [
    json.dumps({**TENDER, "deadline": "9999-12-31T23:59:59-05:00"}),  # overflows when converted to UTC
    json.dumps({**TENDER, "deadline": "0001-01-01T00:00:00+05:00"}),
    '{"reference": "R", "title": "t", "buyer": "b", "deadline": NaN}',
    json.dumps({**TENDER, "deadline": "2099-01-01T00:00:00"}),  # no time zone
    '{"reference": "R", "title": "\\ud800", "buyer": "b", "deadline": "2099-01-01T00:00:00Z"}',
    '{"reference": "R", "title": "t", "buyer": "\\ud800\\udfff\\ud800", "deadline": "2099-01-01T00:00:00Z"}',
    json.dumps({**TENDER, "intake": {"max_entries": 1}})[:-2] + ', "intake": {"max_entries": 1e400}}',
    json.dumps({**TENDER, "intake": {"max_entries": 2.5}}),
    json.dumps({**TENDER, "intake": {"max_ratio": "Infinity"}}),
    b'{"reference": "\xff\xfe"}',  # not UTF-8
    "[" * 10_000 + "]" * 10_000,  # nesting deeper than the parser's recursion
    "{",
    json.dumps({**TENDER, "reference": "\u0000"}),  # PostgreSQL refuses NUL in text: found by schemathesis
    json.dumps({**TENDER, "title": "a\u0007b"}),
])
def test_hostile_json_is_a_400_request_invalid(api: Stack, body: str | bytes) -> None:
    _is_error(_raw(api.client(), body), 400, "request.invalid")


def test_validation_errors_do_not_echo_the_input(api: Stack) -> None:
    r = _raw(api.client(), json.dumps({**TENDER, "title": "x" * 200_000, "buyer": ""}))
    _is_error(r, 400, "request.invalid")
    assert "xxxxxxxxxx" not in r.text and {d["field"] for d in r.json()["detail"]} == {"body.title", "body.buyer"}


def test_json_bodies_are_bounded(api: Stack) -> None:
    http = api.client()
    _is_error(_raw(http, json.dumps({**TENDER, "buyer": "b" * (20 << 20)})), 413, "request.too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused while it is being received
        yield b'{"buyer": "'
        for _ in range(400):
            yield b"b" * 4096
        yield b'"}'

    _is_error(http.post("/v1/tenders", content=chunked(), headers={"content-type": "application/json"}), 413,
              "request.too_large")


def test_routing_errors_have_our_shape(api: Stack) -> None:
    http = api.client()
    _is_error(http.get("/v1/bids/%00"), 404, "bid.not_found")
    _is_error(http.get("/v1/tenders/not-a-uuid"), 404, "tender.not_found")
    _is_error(http.post("/v1/tenders/%00/bids", json={"bidder": "x"}), 404, "tender.not_found")
    _is_error(http.put("/v1/bids/%00x/files/a.pdf", content=b"x"), 404, "bid.not_found")
    _is_error(http.delete("/v1/tenders"), 405, "request.method_not_allowed")
    _is_error(http.get("/v1/nope/x"), 404, "request.not_found")
    _is_error(http.get("/v1/bids/x/y/z"), 404, "request.not_found")
    _is_error(httpx.post(f"http://127.0.0.1:{api.port}/v1/tenders", json=TENDER), 401, "auth.missing")
    _is_error(httpx.post(f"http://127.0.0.1:{api.port}/v1/tenders", json=TENDER,
                         headers={"Authorization": "Basic eDp5"}), 401, "auth.missing")


@pytest.mark.parametrize("name", ["a%FFb", "%20", "x.pdf.%20", "x.pdf.", "%20x.pdf", "a%ED%A0%80b"])
def test_file_names_the_bidder_did_not_send_are_refused(api: Stack, name: str) -> None:
    http = api.client()
    tender = api.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    _is_error(http.put(f"/v1/bids/{bid['id']}/files/{name}", content=b"x"), 400, "file.name_invalid")
    assert http.put(f"/v1/bids/{bid['id']}/files/.offre%20finale.pdf", content=b"x").status_code == 201


def test_openapi_documents_errors_bearer_and_media_types(api: Stack) -> None:
    spec = api.client().get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    create = spec["paths"]["/v1/tenders"]["post"]
    assert create["security"] and {"400", "401", "403", "429", "500"} <= set(create["responses"])
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    pem = spec["paths"]["/v1/timestamping/certificates"]["get"]["responses"]["200"]["content"]
    assert set(pem) == {"application/x-pem-file"}
    tsr = spec["paths"]["/v1/bids/{bid_id}/receipt.tsr"]["get"]["responses"]["200"]["content"]
    assert set(tsr) == {"application/timestamp-reply"}


def _stalled_upload(port: int, bid_id: str, key: str, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"PUT /v1/bids/{bid_id}/files/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Length: {1 << 20}\r\n\r\n".encode() + b"x")
    return sock


def test_one_platform_cannot_take_every_upload_slot_and_idle_uploads_are_dropped(api: Stack) -> None:
    greedy, other = api.client("greedy"), api.client("other")
    key = greedy.headers["Authorization"].split()[1]
    tender = api.new_tender(greedy)
    bid = greedy.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    stalled = [_stalled_upload(api.port, bid["id"], key, f"slow{i}.bin") for i in range(2)]
    try:
        time.sleep(0.5)
        _is_error(greedy.put(f"/v1/bids/{bid['id']}/files/third.bin", content=b"3"), 429, "quota.uploads")
        # another platform is not locked out by the first one's idle uploads
        mine = api.new_tender(other)
        mine_bid = other.post(f"/v1/tenders/{mine['id']}/bids", json={"bidder": "B"}).json()
        assert other.put(f"/v1/bids/{mine_bid['id']}/files/offre.bin", content=b"o" * 1000).status_code == 201
        # the idle uploads are answered 408 and dropped: their slots come back, nothing half-stored
        for sock in stalled:
            sock.settimeout(15)
            answer = sock.recv(4096).decode(errors="replace")
            assert answer.startswith("HTTP/1.1 408") and "request.timeout" in answer, answer
        assert greedy.put(f"/v1/bids/{bid['id']}/files/third.bin", content=b"3").status_code == 201
        names = [f["name"] for f in greedy.get(f"/v1/bids/{bid['id']}").json()["files"]]
        assert names == ["third.bin"]
    finally:
        for sock in stalled:
            sock.close()


def _journal(api: Stack, action: str) -> int:
    with api.rt.db.session() as s:
        return int(s.execute(select(func.count()).select_from(JournalRow).where(JournalRow.action == action))
                   .scalar() or 0)


def test_failed_authentication_is_throttled_and_the_journal_stays_bounded(api: Stack) -> None:
    valid = api.client("honest")
    denied_before, throttled_before = _journal(api, "access.denied"), _journal(api, "access.throttled")
    bad = httpx.Client(base_url=f"http://127.0.0.1:{api.port}", headers={"Authorization": "Bearer bpk_wrong"})
    answers = [bad.get("/v1/tenders/x") for _ in range(40)]
    assert [r.status_code for r in answers[:4]] == [403] * 4
    assert all(r.status_code == 429 and r.json()["code"] == "auth.throttled" for r in answers[4:])
    assert _journal(api, "access.denied") - denied_before == 5  # every attempt up to the budget
    assert _journal(api, "access.throttled") - throttled_before == 1
    # a platform with a valid key on the same address keeps working
    assert valid.post("/v1/tenders", json={**TENDER, "reference": "throttle-ok"}).status_code == 201


def test_throttle_window_slides_and_memory_is_bounded() -> None:
    now = [0.0]
    throttle = FailureThrottle(3, 10.0, clock=lambda: now[0], max_clients=2)
    assert [throttle.failed("a") for _ in range(3)] == [False, False, True]
    with pytest.raises(BidprocError) as err:
        throttle.check("a")
    assert err.value.code is Code.AUTH_THROTTLED
    assert not throttle.failed("a"), "becoming throttled is reported once"
    now[0] = 10.5
    throttle.check("a")  # the window slid past every failure
    throttle.failed("b")
    throttle.failed("c")
    assert len(throttle._failures) == 2


def test_upload_of_a_client_that_disconnects_is_not_an_internal_error(api: Stack, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    http = api.client()
    key = http.headers["Authorization"].split()[1]
    tender = api.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    sock = _stalled_upload(api.port, bid["id"], key, "gone.bin")
    sock.sendall(b"y" * 1000)
    sock.close()
    time.sleep(1)
    assert http.get(f"/v1/bids/{bid['id']}").json()["files"] == []
    assert "unexpected error" not in caplog.text and "Traceback" not in caplog.text


def test_polling_a_bid_journals_one_read_per_platform_bid_and_hour(api: Stack) -> None:
    http, other = api.client("poller"), api.client("poller-2")
    tender = api.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()

    def reads() -> list[tuple[str, str]]:
        with api.rt.db.session() as s:
            rows = s.execute(select(JournalRow).where(JournalRow.subject == bid["id"],
                                                      JournalRow.action == "bid.status.read")).scalars()
            return [(r.actor, r.at.isoformat()) for r in rows]

    for _ in range(20):
        assert http.get(f"/v1/bids/{bid['id']}").status_code == 200
    assert len(reads()) == 1
    assert other.get(f"/v1/bids/{bid['id']}").status_code == 404  # another platform: denied, journalled apart
    api.clock.offset = timedelta(minutes=61)
    try:
        http.get(f"/v1/bids/{bid['id']}")
        http.get(f"/v1/bids/{bid['id']}")
    finally:
        api.clock.offset = timedelta()
    assert len(reads()) == 2 and len({actor for actor, _ in reads()}) == 1


def test_rate_and_storage_quotas_per_platform(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings,
                                              postgres_url: str, redis_url: str) -> None:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings, env={
        "BIDPROC_API_TENANT_UPLOADS_PER_MINUTE": "4",
        "BIDPROC_API_TENANT_MAX_STORED_BYTES": "1000",
    })
    try:
        full, other = stack.client("full"), stack.client("other")
        tender = stack.new_tender(full)
        bid = full.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert full.put(f"/v1/bids/{bid['id']}/files/a.bin", content=b"a" * 600).status_code == 201
        assert full.put(f"/v1/bids/{bid['id']}/files/b.bin", content=b"b" * 300).status_code == 201
        _is_error(full.put(f"/v1/bids/{bid['id']}/files/c.bin", content=b"c" * 200), 429, "quota.storage")
        assert [f["name"] for f in full.get(f"/v1/bids/{bid['id']}").json()["files"]] == ["a.bin", "b.bin"]
        assert full.put(f"/v1/bids/{bid['id']}/files/d.bin", content=b"d" * 100).status_code == 201  # exactly full
        _is_error(full.put(f"/v1/bids/{bid['id']}/files/e.bin", content=b"e"), 429, "quota.rate")  # 5th this minute
        # another platform has quotas of its own
        mine = stack.new_tender(other)
        mine_bid = other.post(f"/v1/tenders/{mine['id']}/bids", json={"bidder": "B"}).json()
        assert other.put(f"/v1/bids/{mine_bid['id']}/files/x.bin", content=b"x" * 900).status_code == 201
    finally:
        stack.close()


def test_upload_rate_refills_over_time() -> None:
    now = [0.0]
    rate = UploadRate(2, clock=lambda: now[0])
    rate.take("a")
    rate.take("a")
    with pytest.raises(BidprocError) as err:
        rate.take("a")
    assert err.value.code is Code.QUOTA_RATE
    rate.take("b")
    now[0] = 30.0  # one token back after half a minute
    rate.take("a")
    with pytest.raises(BidprocError):
        rate.take("a")
    UploadRate(0).take("a")  # off


def test_a_count_of_files_is_not_a_size(api: Stack) -> None:
    http = api.client()
    tender = api.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    for i in range(3):
        assert http.put(f"/v1/bids/{bid['id']}/files/f{i}.txt", content=b"x").status_code == 201
    _is_error(http.put(f"/v1/bids/{bid['id']}/files/f3.txt", content=b"x"), 413, "bid.too_many_files")
