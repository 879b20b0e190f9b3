"""The same pipeline on RabbitMQ instead of Redis, chosen by configuration only."""

from __future__ import annotations

from pathlib import Path

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack


def test_bid_processed_through_rabbitmq(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings,
                                        postgres_url: str, rabbitmq_url: str) -> None:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings,
                  env={"BIDPROC_QUEUE_BACKEND": "rabbitmq", "BIDPROC_QUEUE_RABBITMQ_URL": rabbitmq_url})
    try:
        stack.start_worker()
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        status = stack.wait_status(http, bid["id"])
        assert status["status"] == "processed"
    finally:
        stack.close()
