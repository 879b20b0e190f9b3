"""Every failure of an HTTP request becomes ``{"code", "message"}`` here, and nowhere else.

FastAPI and Starlette answer some failures themselves in their own ``{"detail": ...}`` shape (no such
route, wrong method, a body that is not JSON or is nested 10,000 deep): those are translated too, so
a client reads one shape for every error.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from bidproc.errors import BidprocError, Code, http_status

log = logging.getLogger(__name__)
MAX_DETAIL_ITEMS = 20  # a validation answer names at most this many problems
MAX_TEXT = 200  # characters of any one message we echo


class ErrorOut(BaseModel):
    """The body of every error answer."""

    code: str
    message: str


def _text(value: Any) -> str:
    """Printable and JSON-safe, however hostile the input (lone surrogates such as "\\ud800" included)."""
    text = str(value)[:MAX_TEXT]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _error(code: Code, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code.value, "message": _text(message), **extra}, status_code=http_status(code))


# Starlette's own HTTP errors, by status: routing and body parsing happen before our code runs.
_HTTP_CODES = {404: Code.REQUEST_NOT_FOUND, 405: Code.REQUEST_METHOD_NOT_ALLOWED, 413: Code.REQUEST_TOO_LARGE}


def install(app: FastAPI) -> None:
    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _error(Code.INTERNAL_ERROR, "internal error (logged)")

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client's doing, not ours: one line, no traceback (nobody reads the answer anyway).
        log.info("client disconnected before the end of %s %s", request.method, request.url.path)
        return _error(Code.REQUEST_INCOMPLETE, "the client disconnected before the request was complete")

    @app.exception_handler(BidprocError)
    async def _error_handler(_: Request, exc: BidprocError) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the rejected input: it may be huge (a 1 MB title) or not encodable (lone surrogates).
        problems = [
            {"field": ".".join(_text(p) for p in e.get("loc", ())), "problem": _text(e.get("msg", ""))}
            for e in exc.errors()[:MAX_DETAIL_ITEMS]
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:3])
        return _error(Code.REQUEST_INVALID, f"invalid request: {summary}", detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, Code.REQUEST_INVALID)
        return _error(code, str(exc.detail))


# For the OpenAPI document: the errors any authenticated route may answer.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "request.invalid, deadline.*, file.*, bid.*: the request is not acceptable"),
        (401, "auth.missing: no API key"),
        (403, "auth.denied: unknown or revoked API key; auth.forbidden_role: a key used outside its role; "
              "opening.quorum"),
        (404, "*.not_found: no such tender, bid or file for this platform"),
        (409, "a conflict with the bid's or tender's state (deadline.passed, bid.already_submitted, "
              "opening.too_early, opening.offline, ...)"),
        (413, "request.too_large, size.too_large"),
        (429, "auth.throttled, quota.uploads: slow down"),
        (500, "internal.error: logged on the server"),
        (503, "service.busy, storage.unavailable, database.unavailable, timestamp.unavailable: retry later"),
    )
}
