"""Slow or stalled uploads neither block other bidders nor exhaust the service."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack


def _stalled_upload(port: int, bid_id: str, key: str, name: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"PUT /v1/bids/{bid_id}/files/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Length: {10 << 20}\r\n\r\n".encode() + b"x" * 1024)
    return sock


def test_stalled_uploads_do_not_block_others_and_are_capped(tmp_path: Path, s3_endpoint: str, redis_url: str,
                                                            postgres_url: str, clamd_settings: ClamdSettings) -> None:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings, env={"BIDPROC_API_MAX_CONCURRENT_UPLOADS": "10"})
    stalled: list[socket.socket] = []
    try:
        http = stack.client()
        key = http.headers["Authorization"].split()[1]
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        other = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Autre"}).json()
        stalled = [_stalled_upload(stack.port, bid["id"], key, f"slow{i}.bin") for i in range(9)]
        time.sleep(1)
        start = time.monotonic()
        r = http.put(f"/v1/bids/{other['id']}/files/offre.bin", content=b"o" * (20 << 20))
        assert r.status_code == 201 and time.monotonic() - start < 15
        # the 10th stalled upload fills the cap: the next one is told to come back, not left hanging
        stalled.append(_stalled_upload(stack.port, bid["id"], key, "slow9.bin"))
        time.sleep(1)
        busy = http.put(f"/v1/bids/{other['id']}/files/annexe.bin", content=b"a")
        assert busy.status_code == 503 and busy.json()["code"] == "service.busy"
    finally:
        for sock in stalled:
            sock.close()
        stack.close()
