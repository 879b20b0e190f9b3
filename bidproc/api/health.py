"""Readiness: each service bidproc depends on, probed with a short bound and named with its state.

``/healthz`` says the process is alive; ``/readyz`` says whether it can do its work now: the
database, the queue's broker, the object store, clamd and the TSA. A load balancer takes a
not-ready instance out of rotation; an operator reads which dependency is the cause.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from bidproc.runtime import Runtime

PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 3)}


def _database(rt: Runtime) -> str:
    with rt.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return rt.db.engine.dialect.name


def _broker(broker: Any) -> Callable[[], str]:
    def probe() -> str:
        name = type(broker).__name__
        client = getattr(broker, "client", None)  # dramatiq's RedisBroker
        if client is not None:
            client.ping()
        elif name == "RabbitmqBroker":
            connection = broker.connection  # opens (or reuses) the connection; raises when the server is away
            if not connection.is_open:
                raise ConnectionError("RabbitMQ connection is closed")
        return name

    return probe


def _store(rt: Runtime) -> str:
    rt.store.exists("readyz/probe")  # a HEAD (S3) or a stat (local): reachable and authorised
    return rt.settings.storage.backend


def _clamd(rt: Runtime) -> str:
    rt.scanner.ping()
    return f"{rt.settings.clamd.host}:{rt.settings.clamd.port}"


def _tsa(rt: Runtime) -> str:
    url = rt.settings.timestamping.tsa_url
    if not url:
        return "embedded local TSA"
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # RFC 3161 has no health request: a TCP connection is the cheapest honest probe (no token is spent)
    with socket.create_connection((parts.hostname or "", port), timeout=PROBE_SECONDS):
        return url


def readiness(rt: Runtime, broker: Any) -> list[Probe]:
    """Every dependency probed in parallel, each within PROBE_SECONDS; a slow one is reported as such."""
    probes: dict[str, Callable[[], str]] = {
        "database": lambda: _database(rt),
        "broker": _broker(broker),
        "store": lambda: _store(rt),
        "clamd": lambda: _clamd(rt),
        "tsa": lambda: _tsa(rt),
    }

    def timed(fn: Callable[[], str]) -> tuple[bool, str, float]:
        start = time.monotonic()
        try:
            return True, fn(), time.monotonic() - start
        except Exception as exc:  # a probe reports; it never raises
            return False, f"{type(exc).__name__}: {exc}"[:300], time.monotonic() - start

    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(timed, fn) for name, fn in probes.items()}
        out = []
        deadline = time.monotonic() + PROBE_SECONDS
        for name, future in futures.items():
            try:
                ok, detail, seconds = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                ok, detail, seconds = False, f"no answer within {PROBE_SECONDS:g} s", PROBE_SECONDS
            out.append(Probe(name, ok, detail, seconds))
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung probe must not hold the answer
