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
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from bidproc.api.auth import authorise
from bidproc.errors import BidprocError, Code, http_status

log = logging.getLogger(__name__)
MAX_DETAIL_ITEMS = 20  # a validation answer names at most this many problems
MAX_TEXT = 200  # characters of any one message we echo


class ErrorOut(BaseModel):
    """The body of every error answer: ``code`` is one of the stable codes (``bidproc/errors.py``)."""

    code: Code
    message: str
    detail: list[dict[str, str]] | None = Field(None, description="request.invalid: each field and its problem")


def _text(value: Any) -> str:
    """Printable and JSON-safe, however hostile the input (lone surrogates such as "\\ud800" included)."""
    text = str(value)[:MAX_TEXT]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _error(code: Code, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code.value, "message": _text(message), **extra}, status_code=http_status(code))


# Starlette's own HTTP errors, by status: routing and body parsing happen before our code runs.
_HTTP_CODES = {404: Code.REQUEST_NOT_FOUND, 405: Code.REQUEST_METHOD_NOT_ALLOWED, 413: Code.REQUEST_TOO_LARGE}


async def _authorised_first(request: Request) -> JSONResponse | None:
    """A body FastAPI cannot decode fails before the route's dependencies run: a missing key or a key
    outside its role is still the answer (and the attempt journalled), not a remark on the body."""
    try:
        await authorise(request)
    except BidprocError as refused:
        return _error(refused.code, refused.message)
    return None


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
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()) and (
                refused := await _authorised_first(request)) is not None:
            return refused
        # Never echo the rejected input: it may be huge (a 1 MB title) or not encodable (lone surrogates).
        problems = [
            {"field": ".".join(_text(p) for p in e.get("loc", ())), "problem": _text(e.get("msg", ""))}
            for e in exc.errors()[:MAX_DETAIL_ITEMS]
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:3])
        return _error(Code.REQUEST_INVALID, f"invalid request: {summary}", detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and (refused := await _authorised_first(request)) is not None:
            return refused  # a body FastAPI could not decode (not UTF-8): the key is still answered first
        code = _HTTP_CODES.get(exc.status_code, Code.REQUEST_INVALID)
        return _error(code, str(exc.detail))


# For the OpenAPI document: every status an error may have, each with every code answered with it, so a
# client (or a checker of the document) finds each answer's status and code documented. Generated from
# the one mapping of codes to statuses, so a new code is documented the day it is added.
_MEANING = {
    400: "the request is not acceptable", 401: "no API key", 403: "a key refused, or used outside its role",
    404: "no such route, or no such tender, bid or file for this platform", 405: "no such method for this route",
    408: "an upload that stopped sending", 409: "a conflict with the bid's or tender's state",
    413: "a body, file or bid too large", 422: "a well-formed request the service cannot act on",
    429: "slow down: a throttle or quota", 500: "an internal error, logged on the server",
    503: "a service bidproc depends on is unavailable: retry later",
}


def _codes_by_status() -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = {}
    for code in Code:
        by_status.setdefault(http_status(code), []).append(code.value)
    return dict(sorted(by_status.items()))


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut,
             "description": f"{_MEANING.get(status, 'an error')}: " + ", ".join(f"`{c}`" for c in codes)}
    for status, codes in _codes_by_status().items()
}
