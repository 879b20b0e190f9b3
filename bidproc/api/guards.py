"""What keeps one client from hurting the others: body bounds, upload slots, failed-login throttling.

Each guard is policy as data (its limits are constructor arguments) with the clock as a parameter, so
the API wires them and tests can drive them without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bidproc.errors import BidprocError, Code, http_status

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class BodyLimit:
    """ASGI middleware: JSON bodies (every method but PUT, the streamed file upload) are bounded.

    FastAPI reads a JSON body whole before validating it, so without a bound one request of a
    20 MB "buyer" costs 20 MB (and more once parsed). Refused by Content-Length when announced, and
    while receiving when chunked, with ``413 request.too_large``.
    """

    def __init__(self, app: Any, max_bytes: int, exempt: frozenset[str] = frozenset()) -> None:
        if max_bytes < 1024:
            raise ValueError(f"max_bytes must be at least 1024, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt  # paths that bound their own bodies (the verification page's uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "PUT" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False
        answered = False

        async def bounded() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI turns any exception raised while it reads the body into its own 400, so
                    # end the body here and answer 413 in place of whatever the app then says.
                    refused = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal answered
            if not refused:
                await send(message)
            elif not answered:
                answered = True
                await self._refuse(send)

        await self.app(scope, bounded, guarded_send)

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps({"code": Code.REQUEST_TOO_LARGE.value, "message": self._message()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": http_status(Code.REQUEST_TOO_LARGE),
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class UploadSlots:
    """Concurrent uploads: a cap for the whole service and a smaller one per platform (tenant).

    Without the per-platform cap, one client opening uploads that send a byte and go idle takes every
    slot, and every other platform is locked out (a found abuse). Beyond its share a platform gets
    ``429 quota.uploads``; beyond the service's cap everybody gets ``503 service.busy``.
    """

    def __init__(self, total: int, per_tenant: int) -> None:
        if total < 1 or per_tenant < 1:
            raise ValueError(f"upload slots must be positive, got total={total}, per_tenant={per_tenant}")
        self.total = total
        self.per_tenant = min(per_tenant, total)
        self._busy: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        # one event loop: no lock needed between the checks and the increments
        if sum(self._busy.values()) >= self.total:
            raise BidprocError(Code.SERVICE_BUSY, "too many uploads in progress: retry shortly")
        if self._busy.get(tenant, 0) >= self.per_tenant:
            raise BidprocError(
                Code.QUOTA_UPLOADS, f"this platform already has {self.per_tenant} uploads in progress: retry shortly"
            )
        self._busy[tenant] = self._busy.get(tenant, 0) + 1
        try:
            yield
        finally:
            self._busy[tenant] -= 1
            if not self._busy[tenant]:
                del self._busy[tenant]


class UploadRate:
    """Uploads per platform and minute (a token bucket): a platform in a loop cannot starve the others.

    ``per_minute`` 0 switches it off. Past it: ``429 quota.rate``, with the wait in the message.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be 0 (off) or positive, got {per_minute}")
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, when)

    def take(self, tenant: str) -> None:
        if not self.per_minute:
            return
        now = self._clock()
        tokens, then = self._buckets.get(tenant, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[tenant] = (tokens, now)
            wait = (1.0 - tokens) * 60.0 / self.per_minute
            raise BidprocError(Code.QUOTA_RATE, f"more than {self.per_minute} uploads a minute: retry in {wait:.1f} s")
        self._buckets[tenant] = (tokens - 1.0, now)


class FailureThrottle:
    """Failed authentications per client address, in a sliding window.

    Every refused key is journalled (Annex IV (g)); without a bound a client could grow the journal
    without end. After ``max_failures`` within ``window_seconds`` the client is answered ``429
    auth.throttled`` and its failures are no longer journalled one by one: only the moment it became
    throttled is. Memory is bounded too: at most ``max_clients`` addresses, the least recent dropped.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if max_failures < 1 or window_seconds <= 0:
            raise ValueError(f"invalid throttle: max_failures={max_failures}, window_seconds={window_seconds}")
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()  # authentication runs on the thread pool

    def _recent(self, client: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(client, []) if now - t < self.window]
        if kept:
            self._failures[client] = kept
        else:
            self._failures.pop(client, None)
        return kept

    def over_budget(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, self._clock())) >= self.max_failures

    def check(self, client: str) -> None:
        """Raise ``auth.throttled`` while ``client`` is over its budget of failures."""
        with self._lock:
            recent = self._recent(client, self._clock())
            if len(recent) >= self.max_failures:
                wait = int(self.window - (self._clock() - recent[0])) + 1
                raise BidprocError(Code.AUTH_THROTTLED, f"too many failed authentications: retry in {wait} s")

    def failed(self, client: str) -> bool:
        """Count one failure; True when this one made the client throttled (journal that, once)."""
        with self._lock:
            now = self._clock()
            recent = self._recent(client, now)
            was_over = len(recent) >= self.max_failures
            recent.append(now)
            self._failures[client] = recent[-self.max_failures :]  # the window needs no more than these
            self._failures.move_to_end(client)
            if len(self._failures) > self.max_clients:  # a spray of addresses: forget the least recent
                self._failures.popitem(last=False)
            return not was_over and len(recent) >= self.max_failures


async def idle_bounded(stream: AsyncIterator[bytes], idle_seconds: float) -> AsyncGenerator[bytes, None]:
    """The pieces of an upload; ``request.timeout`` when the client sends nothing for ``idle_seconds``.

    One timeout rescheduled per piece, armed only while waiting for the client (the time the caller
    spends on a piece is not the client's idling). ``asyncio.wait_for`` per piece made a task for each
    64 KiB received: a good part of the event loop's work on a large upload.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as idle:
            while True:
                idle.reschedule(loop.time() + idle_seconds)
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                idle.reschedule(None)
                yield chunk
    except TimeoutError:
        raise BidprocError(Code.REQUEST_TIMEOUT, f"no data received for {idle_seconds:g} s: upload abandoned") from None
