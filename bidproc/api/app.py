"""Routes under ``/v1``; errors as ``{"code", "message"}`` with the status of :func:`bidproc.errors.http_status`."""

from __future__ import annotations

import json
import logging
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from bidproc import __version__
from bidproc.api.archivist import archivist_router
from bidproc.api.auth import Reader, Tenant
from bidproc.api.guards import BodyLimit, FailureThrottle, UploadRate, UploadSlots
from bidproc.api.handlers import COMMON_ERRORS, install
from bidproc.api.health import readiness
from bidproc.api.metrics import Metrics, RequestMetrics
from bidproc.api.opening import opening_router
from bidproc.api.upload import stream_into
from bidproc.desk.deposit import Desk
from bidproc.domain import Tender, utc
from bidproc.encryption import tender_keys
from bidproc.errors import BidprocError, Code
from bidproc.logs import CorrelationMiddleware
from bidproc.pipeline.queue import Pipeline
from bidproc.quotas import stored_bytes
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)


def _printable(value: str) -> str:
    # Names end up in receipts, journals and reports: no control characters (PostgreSQL refuses NUL outright)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("control characters are not allowed")
    return value


Text = Annotated[str, AfterValidator(_printable)]


class TenderIn(BaseModel):
    reference: Text = Field(min_length=1, max_length=200)
    title: Text = Field(min_length=1, max_length=1000)
    buyer: Text = Field(min_length=1, max_length=500)
    deadline: datetime
    intake: dict[str, Any] | None = Field(
        default=None, description='IntakeLimits fields this tender changes, e.g. {"allowed_kinds": ["pdf"]}'
    )
    opening: OpeningIn | None = None
    # "opening": strict mode, sealed from the first byte and processed after the opening (committee only)
    process_at: Literal["receipt", "opening"] = "receipt"

    @field_validator("deadline")
    @classmethod
    def _aware_and_representable(cls, value: datetime) -> datetime:
        try:  # e.g. 9999-12-31T23:59:59-05:00 has no UTC equivalent: a 400, not an overflow deep inside
            return utc(value)
        except BidprocError as exc:
            raise ValueError(exc.message) from None


class OpeningIn(BaseModel):
    """How the tender opens (README, "Sealing and opening"). Absent: a committee of one, k = 1."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field must not silently weaken the opening

    mode: Literal["committee", "recipients"]
    threshold: int | None = Field(default=None, ge=1, le=16)
    members: list[Text] | None = Field(default=None, max_length=16)
    member_certificates: dict[str, str] | None = Field(default=None, max_length=16)
    certificates: list[str] | None = Field(default=None, max_length=8)
    algorithm: Literal["p256", "rsa3072"] = "p256"


class BidIn(BaseModel):
    bidder: Text = Field(min_length=1, max_length=500)


def _tender_json(tender: Tender) -> dict[str, Any]:
    return {
        "id": tender.id,
        "reference": tender.reference,
        "title": tender.title,
        "buyer": tender.buyer,
        "deadline": tender.deadline.isoformat(),
        "intake": dict(tender.intake_policy or {}),
        "opening": tender_keys.public_view(tender.opening),
        "opened_at": tender.opened_at.isoformat() if tender.opened_at else None,
        "contract": tender.contract,
    }


def binary(media_type: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answer of a route that serves bytes, not JSON."""
    return {200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}


PEM: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}}


def create_app(rt: Runtime, pipeline: Pipeline) -> FastAPI:
    api = rt.settings.api
    app = FastAPI(
        title="bidproc",
        version=__version__,
        description="Receipt, scanning, signature validation and archiving of electronic bids.",
        responses=COMMON_ERRORS,
        # A path with a trailing slash is not one of ours: 404 in our shape, not a 307 whose Location is
        # built from the client's Host header (a redirect anyone can point elsewhere).
        redirect_slashes=False,
    )
    app.state.runtime = rt
    app.state.auth_throttle = FailureThrottle(api.auth_max_failures, api.auth_window_seconds)
    app.add_middleware(BodyLimit, max_bytes=api.max_json_bytes,
                       exempt=frozenset({"/verify"}) if api.verify_page else frozenset())
    if api.verify_page:
        from bidproc.api.verify_page import verify_router  # Jinja2 and the report renderers: only when on

        app.include_router(verify_router(rt))
    metrics = Metrics(rt)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(CorrelationMiddleware)  # outermost: every line of the request is tagged
    install(app)
    desk = Desk(rt)
    uploads = UploadSlots(api.max_concurrent_uploads, api.max_concurrent_uploads_per_tenant)
    rate = UploadRate(api.tenant_uploads_per_minute)

    @app.get("/healthz", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    def ready() -> JSONResponse:
        """Each dependency with its state; 503 when any is not ready."""
        probes = readiness(rt, pipeline.broker)
        ok = all(p.ok for p in probes)
        return JSONResponse({"ready": ok, "services": {p.name: p.as_json() for p in probes}},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/tenders", status_code=201, tags=["tenders"])
    def create_tender(body: TenderIn, who: Tenant) -> dict[str, Any]:
        """In committee mode the answer's ``opening.shares`` is the only time the shares are shown."""
        tender_id = str(uuid.uuid4())
        spec = body.opening.model_dump(exclude_none=True) if body.opening else None
        opening, shares = tender_keys.setup(tender_id, spec, body.process_at)
        tender = desk.create_tender(who, body.reference, body.title, body.buyer, body.deadline, body.intake,
                                    tender_id=tender_id, opening=opening)
        answer = _tender_json(tender)
        if shares:
            answer["opening"]["shares"] = shares
        return answer

    @app.get("/v1/tenders/{tender_id}", tags=["tenders"])
    def get_tender(tender_id: str, who: Reader) -> dict[str, Any]:
        return _tender_json(desk.tender(who, tender_id))

    @app.post("/v1/tenders/{tender_id}/bids", status_code=201, tags=["bids"])
    def create_bid(tender_id: str, body: BidIn, who: Tenant) -> dict[str, Any]:
        bid = desk.create_bid(who, tender_id, body.bidder)
        return {"id": bid.id, "tender": bid.tender_id, "bidder": bid.bidder, "status": bid.status.value}

    raw_body = {
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    }

    async def receive(bid_id: str, name: str, request: Request, who: str, backup: bool) -> dict[str, Any]:
        async with uploads.hold(who):
            rate.take(who)
            budget = None
            if api.tenant_max_stored_bytes:  # checked against the usage when the upload starts
                budget = api.tenant_max_stored_bytes - await run_in_threadpool(stored_bytes, rt.db, who)
                if budget <= 0:
                    raise BidprocError(Code.QUOTA_STORAGE, "this platform's storage quota is used up")
            up = await run_in_threadpool(lambda: desk.begin_upload(who, bid_id, name, backup=backup))
            try:
                await stream_into(request, up, api.upload_idle_seconds, budget)
            except BaseException as exc:
                await run_in_threadpool(up.abort, exc)
                raise
        row = await run_in_threadpool(up.commit)
        return {"name": row.name, "size": row.size, "sha256": row.sha256}

    @app.put("/v1/bids/{bid_id}/files/{name}", status_code=201, tags=["bids"], openapi_extra=raw_body)
    async def upload(bid_id: str, name: str, request: Request, who: Tenant) -> dict[str, Any]:
        """Streams the body in; it is encrypted as it arrives and never held whole in memory."""
        return await receive(bid_id, name, request, who, False)

    @app.put("/v1/bids/{bid_id}/backup/{name}", status_code=201, tags=["bids"], openapi_extra=raw_body)
    async def upload_backup(bid_id: str, name: str, request: Request, who: Tenant) -> dict[str, Any]:
        """A file of the bid's backup copy ("copie de sauvegarde"), streamed in like the bid's files, listed
        apart in the receipt, sealed with the bid; opened only in place of a bid that was quarantined,
        could not be opened or arrived late while the backup arrived in time; otherwise destroyed
        (crypto-shredded) at the opening. Committee tenders only (``409 opening.offline`` otherwise)."""
        return await receive(bid_id, name, request, who, True)

    @app.post("/v1/bids/{bid_id}/submit", status_code=201, tags=["bids"])
    def submit(bid_id: str, who: Tenant) -> Response:
        bid, receipt = desk.submit(who, bid_id)
        try:  # late bids too: they are not processed, but sealed
            pipeline.enqueue(bid.id)
        except Exception:  # the bid is legally submitted; the reconciler will enqueue it (late ones too)
            log.exception("could not enqueue bid %s now", bid.id)
        if bid.late:
            return JSONResponse(
                {
                    "code": Code.DEADLINE_PASSED.value,
                    "bid": bid.id,
                    "status": bid.status.value,
                    "message": "the upload ended after the deadline: the bid is kept, marked late",
                    "receipt": json.loads(receipt.body),
                },
                status_code=409,
            )
        return Response(receipt.body, status_code=201, media_type="application/json")

    @app.get("/v1/bids/{bid_id}", tags=["bids"])
    def status(bid_id: str, who: Tenant) -> dict[str, Any]:
        return desk.status(who, bid_id)

    @app.get("/v1/bids/{bid_id}/receipt", tags=["receipts"])
    def receipt_json(bid_id: str, who: Tenant) -> Response:
        """The receipt's exact bytes: the RFC 3161 token's imprint is their SHA-256."""
        return Response(desk.receipt(who, bid_id).body, media_type="application/json")

    tsr, p7s = binary("application/timestamp-reply"), binary("application/pkcs7-signature")

    @app.get("/v1/bids/{bid_id}/receipt.tsr", tags=["receipts"], response_class=Response, responses=tsr)
    def receipt_tsr(bid_id: str, who: Tenant) -> Response:
        return Response(desk.receipt(who, bid_id).timestamp_token, media_type="application/timestamp-reply")

    @app.get("/v1/bids/{bid_id}/receipt.p7s", tags=["receipts"], response_class=Response, responses=p7s)
    def receipt_p7s(bid_id: str, who: Tenant) -> Response:
        return Response(desk.receipt(who, bid_id).seal, media_type="application/pkcs7-signature")

    @app.get("/v1/timestamping/certificates", tags=["receipts"], response_class=Response, responses=PEM)
    def tsa_certificates() -> Response:
        return Response(rt.tsa.certificates_pem(), media_type="application/x-pem-file")

    @app.get("/v1/seal/certificates", tags=["receipts"], response_class=Response, responses=PEM)
    def seal_certificates() -> Response:
        return Response(rt.local_pki.chain_pem(rt.local_pki.seal), media_type="application/x-pem-file")

    app.include_router(opening_router(rt, _tender_json, pipeline.openings))
    app.include_router(archivist_router(rt))
    return app
