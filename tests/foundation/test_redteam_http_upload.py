"""Red team, HTTP: uploads with lying lengths, broken chunking, ``Expect``, and file names built to collide.

Raw sockets where a client library would correct the request. What must hold: no 5xx, the upload is
either stored whole (exactly the bytes HTTP delimits) or not at all, and a name that would be another
file's name on a buyer's disk (Unicode normalisation, case, Windows device names) is refused.
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from bidproc.config import ClamdSettings
from tests.foundation.redteam_http import raw_exchange, status_of
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, tender


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, clamd_settings: ClamdSettings,
        postgres_url: str, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("upload"), s3_endpoint, clamd_settings,
                  env={"BIDPROC_API_UPLOAD_IDLE_SECONDS": "2", "BIDPROC_API_MAX_FILES_PER_BID": "50"})
    yield stack
    stack.close()


@pytest.fixture
def bid(api: Stack) -> tuple[httpx.Client, str]:
    http = client(api, "ville", "platform")
    return http, deposit(http, tender(api, http)["id"], {}, submit=False)


def _files(http: httpx.Client, bid: str) -> dict[str, dict[str, object]]:
    return {f["name"]: f for f in http.get(f"/v1/bids/{bid}").json()["files"]}


def _head(key: str, bid: str, name: str, *extra: str) -> bytes:
    lines = [f"PUT /v1/bids/{bid}/files/{name} HTTP/1.1", "Host: x", f"Authorization: Bearer {key}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _error_body(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:300]
    parsed = json.loads(body[: int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])])
    assert isinstance(parsed["code"], str) and isinstance(parsed["message"], str), parsed
    return dict(parsed)


def test_a_body_shorter_than_its_content_length_stores_nothing(api: Stack, bid: tuple[httpx.Client, str]) -> None:
    http, b = bid
    key = http.headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, _head(key, b, "court.bin", "Content-Length: 5000") + b"x" * 100,
                          close_write=True, wait=5)
    assert not answer or 400 <= status_of(answer) < 500, answer[:300]
    answer = raw_exchange(api.port, _head(key, b, "lent.bin", "Content-Length: 5000") + b"x" * 100, wait=8)
    assert status_of(answer) == 408 and _error_body(answer)["code"] == "request.timeout", answer[:300]
    time.sleep(0.5)
    assert _files(http, b) == {}


def test_a_body_longer_than_its_content_length_stores_exactly_the_declared_bytes(
        api: Stack, bid: tuple[httpx.Client, str]) -> None:
    http, b = bid
    key = http.headers["Authorization"].split()[1]
    data = b"declared" * 100
    answer = raw_exchange(api.port, _head(key, b, "long.bin", f"Content-Length: {len(data)}") + data
                          + b"GARBAGE-THAT-IS-NOT-A-REQUEST\r\n\r\n", wait=3)
    assert status_of(answer) == 201, answer[:300]
    stored = _files(http, b)
    assert set(stored) == {"long.bin"}
    assert stored["long.bin"]["size"] == len(data) and stored["long.bin"]["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("chunks", [
    b"zz\r\nxx\r\n0\r\n\r\n",  # not hexadecimal
    b"-5\r\nxxxxx\r\n0\r\n\r\n",  # negative
    b"ffffffffffffffffffff\r\nx\r\n",  # beyond 64 bits
    b"5\r\nxxxxxxxxxx\r\n0\r\n\r\n",  # more data than the chunk says
    b"a\r\nxx\r\n0\r\n\r\n",  # less data than the chunk says, then a terminator
    b"3\r\nabc",  # cut off in the middle, no terminator
])
def test_broken_chunked_bodies_store_nothing_and_answer_our_error_shape(
        api: Stack, bid: tuple[httpx.Client, str], chunks: bytes) -> None:
    http, b = bid
    key = http.headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, _head(key, b, "chunks.bin", "Transfer-Encoding: chunked") + chunks, wait=5)
    assert 400 <= status_of(answer) < 500, answer[:300]
    _error_body(answer)
    time.sleep(0.5)
    assert _files(http, b) == {}


def test_expect_100_continue_is_asked_only_of_a_key_allowed_to_upload(api: Stack,
                                                                      bid: tuple[httpx.Client, str]) -> None:
    http, b = bid
    key = http.headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, _head(key, b, "cont.bin", "Content-Length: 4", "Expect: 100-continue")
                          + b"data", wait=3)
    assert answer.startswith(b"HTTP/1.1 100") and b"201 Created" in answer, answer[:300]
    buyer = client(api, "ville", "buyer").headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, _head(buyer, b, "buyer.bin", "Content-Length: 4", "Expect: 100-continue"),
                          wait=3)
    assert status_of(answer) == 403 and _error_body(answer)["code"] == "auth.forbidden_role", answer[:300]
    assert set(_files(http, b)) == {"cont.bin"}


def test_a_zero_length_file_is_received_as_such(bid: tuple[httpx.Client, str]) -> None:
    http, b = bid
    r = http.put(f"/v1/bids/{b}/files/vide.pdf", content=b"")
    assert r.status_code == 201 and r.json() == {"name": "vide.pdf", "size": 0,
                                                  "sha256": hashlib.sha256(b"").hexdigest()}


@pytest.mark.parametrize("first, second", [
    ("r\u00e9sum\u00e9.pdf", "re\u0301sume\u0301.pdf"),  # NFC, then NFD
    ("re\u0301sume\u0301.pdf", "r\u00e9sum\u00e9.pdf"),  # NFD, then NFC
    ("\u212b.pdf", "\u00c5.pdf"),  # ANGSTROM SIGN and A WITH RING: one NFC form
    ("Offre.pdf", "offre.pdf"),
    ("OFFRE.PDF", "Offre.pdf"),
    ("\u00c9tude.pdf", "\u00e9tude.pdf"),  # É and é
    ("E\u0301tude.pdf", "\u00e9tude.pdf"),  # NFD É, then NFC é
    ("\u03a3\u03bf\u03c6\u03af\u03b1.pdf", "\u03c3\u03bf\u03c6\u03af\u03b1.pdf"),  # Greek capital and small sigma
])
def test_a_name_that_is_another_files_name_on_a_buyers_disk_is_a_duplicate(
        bid: tuple[httpx.Client, str], first: str, second: str) -> None:
    http, b = bid
    assert http.put(f"/v1/bids/{b}/files/{quote(first)}", content=b"one").status_code == 201
    r = http.put(f"/v1/bids/{b}/files/{quote(second)}", content=b"two")
    assert r.status_code == 409 and r.json()["code"] == "file.duplicate", r.text
    assert list(_files(http, b)) == [unicodedata.normalize("NFC", first)]


@pytest.mark.parametrize("name", [
    "CON", "con", "Con.pdf", "PRN.txt", "AUX", "nul", "NUL.tar.gz", "COM1", "com9.docx", "LPT1.pdf", "lpt9",
    "COM\u00b9.pdf", "LPT\u00b3", "CONIN$", "conout$.txt", "CON .pdf", "nul.",
])
def test_windows_device_names_are_refused(bid: tuple[httpx.Client, str], name: str) -> None:
    http, b = bid
    r = http.put(f"/v1/bids/{b}/files/{quote(name)}", content=b"x")
    assert r.status_code == 400 and r.json()["code"] == "file.name_invalid", (name, r.text)
    assert _files(http, b) == {}


@pytest.mark.parametrize("name", ["CONSEIL.pdf", "console.txt", "nullite.pdf", "COM10.pdf", "LPT.pdf",
                                  "aux-notes.pdf", "prn2.txt", "CON-2.pdf"])
def test_names_that_only_start_like_a_device_are_accepted(bid: tuple[httpx.Client, str], name: str) -> None:
    http, b = bid
    assert http.put(f"/v1/bids/{b}/files/{quote(name)}", content=b"x").status_code == 201, name


@pytest.mark.parametrize("encoded", [
    "a%00b.pdf", "a%01.pdf", "a%1F.pdf", "a%7F.pdf", "a%C2%85.pdf", "a%E2%80%AEfdp.exe", "a%E2%80%8B.pdf",
    "%EF%BB%BFa.pdf", "a%0D%0AX-Injected%3A%201.pdf", "a%3Ab.pdf", "a%2Ab.pdf", "a%3Fb.pdf", "a%7Cb.pdf",
    "a%3Cb%3E.pdf", "a%22b.pdf", "a%5Cb.pdf", "%2E", "%2E%2E", "...", "a%ED%B2%80.pdf", "a%C0%AF.pdf",
    "a" * 256, quote("\u00e9" * 128),
])
def test_names_with_controls_separators_or_no_encoding_are_refused(bid: tuple[httpx.Client, str],
                                                                    encoded: str) -> None:
    http, b = bid
    r = http.put(f"/v1/bids/{b}/files/{encoded}", content=b"x")
    assert r.status_code == 400 and r.json()["code"] == "file.name_invalid", (encoded, r.text)


def test_a_name_of_255_bytes_is_received_and_a_very_long_url_is_refused(api: Stack,
                                                                        bid: tuple[httpx.Client, str]) -> None:
    http, b = bid
    longest = "\u00e9" * 125 + "x.pdf"  # 255 bytes of UTF-8
    r = http.put(f"/v1/bids/{b}/files/{quote(longest)}", content=b"x")
    assert r.status_code == 201 and r.json()["name"] == longest, r.text
    key = http.headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, _head(key, b, "n" * 200_000, "Content-Length: 1") + b"x", wait=5)
    assert 400 <= status_of(answer) < 500 or not answer, answer[:300]
    assert set(_files(http, b)) == {longest}
