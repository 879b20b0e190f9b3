"""Helpers of the HTTP red-team tests: what /openapi.json promises, raw sockets, the journal."""

from __future__ import annotations

import socket
from typing import Any

import httpx
from sqlalchemy import func, select

from bidproc.metadata.models import JournalRow
from tests.foundation.stack import Stack


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_documented_error(spec: dict[str, Any], method: str, template: str, r: httpx.Response) -> None:
    """``r`` is an error in the ``{code, message}`` shape whose status *and* code the OpenAPI document gives
    for the operation ``method template``: a client reading the document is never surprised."""
    where = f"{method} {template} -> {r.status_code} {r.text[:300]}"
    assert 400 <= r.status_code < 500 or r.status_code == 503, where
    assert r.headers.get("content-type", "").startswith("application/json"), where
    body = r.json()
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), where
    responses = spec["paths"][template][method.lower()]["responses"]
    documented = responses.get(str(r.status_code))
    assert documented is not None, f"status not documented: {where}"
    schema = _resolve(spec, documented["content"]["application/json"]["schema"])
    assert {"code", "message"} <= set(schema["properties"]), f"documented with another shape: {where}"
    code_schema = _resolve(spec, schema["properties"]["code"])
    assert body["code"] in code_schema.get("enum", []), f"code not a documented code: {where}"
    assert f"`{body['code']}`" in documented["description"], f"code not documented for this status: {where}"


def journal_count(stack: Stack, action: str, subject: str | None = None) -> int:
    with stack.rt.db.session() as s:
        q = select(func.count()).select_from(JournalRow).where(JournalRow.action == action)
        if subject is not None:
            q = q.where(JournalRow.subject == subject)
        return int(s.execute(q).scalar() or 0)


def raw_exchange(port: int, request: bytes, *, wait: float = 10.0, close_write: bool = False) -> bytes:
    """Send ``request`` as is on a fresh connection; everything the server sends until it closes or
    ``wait`` seconds pass without a byte."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(wait)
        answer = b""
        try:
            while piece := sock.recv(65536):
                answer += piece
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def status_of(answer: bytes) -> int:
    """The status of the first response in ``answer`` (0 when there is none)."""
    head = answer.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[0].startswith(b"HTTP/") else 0
