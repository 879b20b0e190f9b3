"""What operators see: readiness names each dependency's state, /metrics reflects what happened."""

from __future__ import annotations

import re
from pathlib import Path

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack
from tests.services import free_port


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels_text = line[line.index("{") + 1 : line.rindex("}")] if "{" in line else ""
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_readyz_names_each_dependency_and_metrics_follow_the_pipeline(stack: Stack) -> None:
    http = stack.client()
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    services = ready.json()["services"]
    assert set(services) == {"database", "broker", "store", "clamd", "tsa"} and all(s["ok"] for s in services.values())
    assert services["database"]["detail"] == "postgresql" and services["broker"]["detail"] == "RedisBroker"

    stack.start_worker()
    tender = stack.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre\n").status_code == 201
    assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
    assert stack.wait_status(http, bid["id"])["status"] == "processed"

    text = http.get("/metrics").text
    assert _metric(text, "bidproc_bids", status="processed") >= 1
    assert _metric(text, "bidproc_documents", verdict="accepted", code="") >= 1
    assert _metric(text, "bidproc_stage_runs", stage="intake") >= 1
    assert _metric(text, "bidproc_stage_seconds_since_receipt", stage="intake", quantile="0.5") > 0
    # requests are labelled by route template, never by raw path (bounded label values)
    assert _metric(text, "bidproc_http_requests_total", method="POST", route="/v1/bids/{bid_id}/submit",
                   status="201") == 1
    assert _metric(text, "bidproc_http_request_seconds_count", method="POST",
                   route="/v1/bids/{bid_id}/submit") == 1
    assert bid["id"] not in text


def test_readyz_says_which_dependency_is_down(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings,
                                              postgres_url: str, redis_url: str) -> None:
    dead = free_port()
    stack = Stack(tmp_path, s3_endpoint, ClamdSettings(host="127.0.0.1", port=dead, timeout_seconds=2),
                  env={"BIDPROC_TIMESTAMPING_TSA_URL": f"http://127.0.0.1:{dead}/tsa",
                       "BIDPROC_TIMESTAMPING_TSA_ROOTS": ""})
    try:
        ready = stack.client().get("/readyz")
        assert ready.status_code == 503
        services = ready.json()["services"]
        assert not services["clamd"]["ok"] and not services["tsa"]["ok"], services
        assert services["database"]["ok"] and services["store"]["ok"] and services["broker"]["ok"]
    finally:
        stack.close()


def test_json_logs_follow_one_bid_across_api_and_workers(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    import json

    from tests.foundation.upproc import bidproc, cli_env, client, new_bid, up, wait_status

    env = {**cli_env(clamd_settings.port), "BIDPROC_SERVICE_LOG_FORMAT": "json"}
    key = bidproc(env, "apikey", "create", "--tenant", "p", "--data-dir", str(tmp_path)).stdout.strip()
    port, log = free_port(), tmp_path / "up.log"
    with up(env, tmp_path, port, log):
        http = client(port, key)
        bid = new_bid(http, {"offre.txt": b"offre"})
        submitted = http.post(f"/v1/bids/{bid}/submit", headers={"X-Request-ID": "platform-req-42"})
        assert submitted.headers["x-request-id"] == "platform-req-42"
        assert wait_status(http, bid, 60)["status"] == "processed"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message", "bid", "request"} <= set(e) for e in lines)
    about_bid = [e for e in lines if e["bid"] == bid]
    # the worker's line for the bid, and the API's access line for the submit, both carry the bid's id
    assert any(e["logger"].startswith("bidproc.pipeline") for e in about_bid), about_bid
    assert any(e["request"] == "platform-req-42" for e in about_bid), about_bid
