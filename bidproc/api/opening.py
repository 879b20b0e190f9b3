"""The buyer's routes: opening dates, the opening, opened and sealed documents (role ``buyer`` only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bidproc.api.auth import Buyer
from bidproc.archive.contract import ContractDesk
from bidproc.archive.retention import ContractKind, RetentionPolicy
from bidproc.desk.opening import OpeningDesk
from bidproc.desk.opening_job import OpeningJobs
from bidproc.domain import Tender, utc
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime


class OpenIn(BaseModel):
    shares: list[str] = Field(max_length=16, description="k of the committee's shares (SLIP-39 words)")


class ContractIn(BaseModel):
    """The contract's kind and dates, once known: they give the retention of the tender's packages."""

    model_config = ConfigDict(extra="forbid")
    kind: ContractKind = ContractKind.SUPPLIES_SERVICES
    signed: date | None = Field(None, description="date the contract was signed")
    performance_end: date | None = Field(None, description="works contracts: end of performance")


class TenderPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deadline: datetime | None = None
    contract: ContractIn | None = None

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        try:
            return utc(value) if value is not None else None
        except BidprocError as exc:
            raise ValueError(exc.message) from None


REPORT_TYPES = {"json": "application/json", "xml": "application/xml", "html": "text/html; charset=utf-8",
                "pdf": "application/pdf"}


def _binary(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}


def opening_router(rt: Runtime, tender_json: Callable[[Tender], dict[str, Any]], jobs: OpeningJobs) -> APIRouter:
    desk = OpeningDesk(rt, jobs)
    contracts = ContractDesk(rt)
    router = APIRouter(tags=["opening"])

    @router.patch("/v1/tenders/{tender_id}")
    def change_tender(tender_id: str, body: TenderPatchIn, who: Buyer) -> dict[str, Any]:
        """``deadline``: only before the current one (``409 deadline.passed`` after). ``contract``: the
        contract's dates, any time; the tender's evidence packages are then locked until the date they
        give (extended, never shortened). Both journalled with old and new."""
        if body.deadline is None and body.contract is None:
            raise BidprocError(Code.REQUEST_INVALID, "nothing to change: give a deadline or a contract")
        row = None
        if body.deadline is not None:
            row = desk.change_deadline(who, tender_id, body.deadline)
        if body.contract is not None:
            c = body.contract
            row = contracts.set_contract(who, tender_id, RetentionPolicy(c.kind, c.signed, c.performance_end))
        assert row is not None  # one of the two was given (checked above)
        return tender_json(row)

    @router.post("/v1/tenders/{tender_id}/open", status_code=202)
    def open_tender(tender_id: str, body: OpenIn, who: Buyer) -> dict[str, Any]:
        """``409 opening.too_early`` before the deadline; ``403 opening.quorum`` unless k genuine shares.
        Then 202: the bids are decrypted by a queued job; poll ``GET /v1/tenders/{id}/opening``. Asking
        again while a run is under way answers that run."""
        return desk.open(who, tender_id, body.shares)

    @router.get("/v1/tenders/{tender_id}/opening")
    def opening_status(tender_id: str, who: Buyer) -> dict[str, Any]:
        """The latest opening run: ``state`` (none, queued, running, done, failed), ``progress`` (bids done
        of total), the bids opened, late, quarantined, pending and failed, and the run's ``errors``."""
        return desk.opening_status(who, tender_id)

    @router.get("/v1/bids/{bid_id}/files")
    def opened_files(bid_id: str, who: Buyer) -> dict[str, Any]:
        """Name, size, SHA-256, role and verdict of each file, once the bid is opened (``409
        opening.too_early`` before: names can tell content)."""
        return desk.opened_files(who, bid_id)

    @router.get("/v1/bids/{bid_id}/files/{name}", response_class=StreamingResponse,
                responses=_binary("application/octet-stream"))
    def opened_file(bid_id: str, name: str, who: Buyer) -> StreamingResponse:
        size, chunks = desk.opened_document(who, bid_id, name)
        return StreamingResponse(chunks, media_type="application/octet-stream",
                                 headers={"content-length": str(size)})

    @router.get("/v1/bids/{bid_id}/sealed/{name}", response_class=StreamingResponse,
                responses=_binary("application/pkcs7-mime"))
    def sealed_file(bid_id: str, name: str, who: Buyer) -> StreamingResponse:
        size, chunks = desk.sealed_document(who, bid_id, name)
        return StreamingResponse(chunks, media_type="application/pkcs7-mime", headers={"content-length": str(size)})

    @router.get("/v1/bids/{bid_id}/reports/{report}", response_class=StreamingResponse,
                responses={200: {"content": {t: {"schema": {"type": "string"}} for t in REPORT_TYPES.values()}}})
    def report(bid_id: str, report: str, who: Buyer) -> StreamingResponse:
        """``<file name>.json|xml|html|pdf``: the signature report of one file of the bid, after the opening
        (the PDF is sealed by the service; the XML is ETSI TS 119 102-2)."""
        name, _, fmt = report.rpartition(".")
        if fmt not in REPORT_TYPES or not name:
            raise BidprocError(Code.REQUEST_INVALID, f"a report is <file name>.{'|'.join(REPORT_TYPES)}")
        size, chunks = desk.opened_report(who, bid_id, name, fmt)
        return StreamingResponse(chunks, media_type=REPORT_TYPES[fmt], headers={"content-length": str(size)})

    return router
