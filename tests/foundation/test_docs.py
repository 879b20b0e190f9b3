"""The README lists every stable code, and the OpenAPI document describes the API."""

from __future__ import annotations

from bidproc.errors import Code, Warning_
from tests.foundation.stack import Stack
from tests.services import ROOT


def test_readme_lists_every_error_and_warning_code() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [c.value for c in [*Code, *Warning_] if f"`{c.value}`" not in readme]
    assert not missing, f"README does not list: {missing}"


def test_openapi_describes_every_route(stack: Stack) -> None:
    spec = stack.client().get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/tenders", "/v1/tenders/{tender_id}/bids", "/v1/bids/{bid_id}/files/{name}",
            "/v1/bids/{bid_id}/submit", "/v1/bids/{bid_id}", "/v1/bids/{bid_id}/receipt",
            "/v1/bids/{bid_id}/receipt.tsr", "/v1/bids/{bid_id}/receipt.p7s",
            "/v1/timestamping/certificates"} <= paths
    body = spec["paths"]["/v1/bids/{bid_id}/files/{name}"]["put"]["requestBody"]
    assert "application/octet-stream" in body["content"]
