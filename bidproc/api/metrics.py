"""Prometheus ``/metrics``: the API's requests, and the pipeline's state as the database knows it.

Workers are other processes (possibly other machines): counters kept in their memory would need
prometheus_client's multiprocess mode and one scrape target per worker. The database is the source
of truth for bids, stages and verdicts, so those figures are read from it at scrape time and are the
same whichever API instance is scraped. Per-request figures (latency of submit, i.e. receipt time)
are this process's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bidproc.metadata.models import BidRow, DocumentRow, StageRunRow
from bidproc.runtime import Runtime

RECENT = timedelta(hours=1)  # stage latencies are summarised over the bids completed this last hour
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class PipelineCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily]:
        bids = GaugeMetricFamily("bidproc_bids", "Bids by status", labels=["status"])
        docs = GaugeMetricFamily("bidproc_documents", "Documents by verdict and code", labels=["verdict", "code"])
        stages = GaugeMetricFamily("bidproc_stage_runs", "Completed stage runs by stage", labels=["stage"])
        latency = GaugeMetricFamily(
            "bidproc_stage_seconds_since_receipt",
            "Seconds from receipt to a stage's completion, over bids completed in the last hour",
            labels=["stage", "quantile"],
        )
        now = self.rt.clock()
        with self.rt.db.session() as s:
            for status, n in s.execute(select(BidRow.status, func.count()).group_by(BidRow.status)):
                bids.add_metric([status], n)
            for verdict, code, n in s.execute(
                select(DocumentRow.verdict, DocumentRow.code, func.count()).group_by(DocumentRow.verdict,
                                                                                      DocumentRow.code)
            ):
                docs.add_metric([verdict, code or ""], n)
            for stage, n in s.execute(select(StageRunRow.stage, func.count()).group_by(StageRunRow.stage)):
                stages.add_metric([stage], n)
            recent = s.execute(
                select(StageRunRow.stage, StageRunRow.completed_at, BidRow.upload_ended_at)
                .join(BidRow, BidRow.id == StageRunRow.bid_id)
                .where(StageRunRow.completed_at > now - RECENT, BidRow.upload_ended_at.is_not(None))
                .limit(100_000)
            ).all()
        by_stage: dict[str, list[float]] = {}
        for stage, done, received in recent:
            if received is None:  # filtered out above; the column is nullable for drafts
                continue
            by_stage.setdefault(stage, []).append((done - received).total_seconds())
        for stage, values in by_stage.items():
            values.sort()
            for q in (0.5, 0.95, 0.99):
                latency.add_metric([stage, str(q)], values[min(len(values) - 1, int(q * len(values)))])
        yield from (bids, docs, stages, latency)


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self, rt: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bidproc_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.seconds = Histogram("bidproc_http_request_seconds", "HTTP request duration", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(PipelineCollector(rt))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: count and time every request by its route template (never the raw path)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status = [500]

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            # label values stay bounded whatever clients send: route templates, known methods
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.seconds.labels(method, route).observe(time.monotonic() - start)
