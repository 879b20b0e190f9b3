"""Logs an operator can follow one bid through: the API and the workers tag every line with the bid.

``service.log_format = "json"`` gives one JSON object per line (time, level, logger, message, bid,
request, and the exception when there is one), for a log pipeline; ``"text"`` (the default) is for a
terminal and carries the same ids. The ids come from context variables, so every line logged while a
request or a bid's processing runs is tagged, whichever module logs it.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_bid: ContextVar[str | None] = ContextVar("bidproc_log_bid", default=None)
_request: ContextVar[str | None] = ContextVar("bidproc_log_request", default=None)
BID_IN_PATH = re.compile(r"^/v1/bids/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(/|$)")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # a caller's X-Request-ID is echoed only if harmless
access = logging.getLogger("bidproc.access")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [bid=%(bid)s request=%(request)s]: %(message)s"


@contextmanager
def bound(*, bid: str | None = None, request: str | None = None) -> Iterator[None]:
    """Tag every log line in this block (and the tasks it starts) with ``bid`` / ``request``."""
    bid_token = _bid.set(bid) if bid else None
    request_token = _request.set(request) if request else None
    try:
        yield
    finally:
        if request_token is not None:
            _request.reset(request_token)
        if bid_token is not None:
            _bid.reset(bid_token)


class _Ids(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.bid = _bid.get() or "-"
        record.request = _request.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "bid": getattr(record, "bid", None) if getattr(record, "bid", "-") != "-" else None,
            "request": getattr(record, "request", None) if getattr(record, "request", "-") != "-" else None,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Root logging for a bidproc process (API, worker, up); replaces earlier handlers."""
    if log_format not in {"text", "json"}:
        raise ValueError(f"service.log_format must be 'text' or 'json', not {log_format!r}")
    handler = logging.StreamHandler()
    handler.addFilter(_Ids())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class CorrelationMiddleware:
    """ASGI: each request gets an id (the caller's ``X-Request-ID`` when sane), echoed in the answer,
    and the bid its path names; both tag every log line of the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        found = BID_IN_PATH.match(scope.get("path", ""))

        status = [500]
        start = time.monotonic()

        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        with bound(bid=found.group(1) if found else None, request=request_id):
            try:
                await self.app(scope, receive, tagged)
            finally:
                # our access line, inside the request's context (uvicorn's own is logged outside it, untagged)
                access.info("%s %s %d %.1f ms", scope["method"], scope.get("path", ""), status[0],
                            1000 * (time.monotonic() - start))
