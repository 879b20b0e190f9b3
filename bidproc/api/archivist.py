"""The archivist's route: a bid's evidence package as a ZIP, streamed (role ``archivist`` only).

The package holds sealed envelopes, receipts, seals and timestamps, never plaintext, and proves itself
offline (README, "Evidence packages"). Each retrieval is journalled.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import zipfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from bidproc.api.auth import with_role
from bidproc.archive.retrieve import package_files
from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import open_archive
from bidproc.desk.deposit import Desk
from bidproc.desk.tenants import Caller, Role
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)
Archivist = Annotated[Caller, Depends(with_role(Role.ARCHIVIST))]
STEP = 1 << 20
STALLED_SECONDS = 60.0  # a client that stops reading this long: the producer gives up


class _Pipe(io.RawIOBase):
    """A write-only, unseekable stream feeding a bounded queue: zipfile writes, the response reads."""

    def __init__(self, pieces: queue.Queue[bytes | None]) -> None:
        self._pieces = pieces

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pieces.put(bytes(data), timeout=STALLED_SECONDS)
        return len(data)


def archivist_router(rt: Runtime) -> APIRouter:
    router = APIRouter(tags=["archive"])
    desk = Desk(rt)

    @router.get(
        "/v1/bids/{bid_id}/evidence.zip",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    def evidence_zip(bid_id: str, who: Archivist,
                     version: Annotated[int | None, Query(ge=1)] = None) -> StreamingResponse:
        """The package (its newest complete version, or ``version``), in the layout ``bidproc evidence
        verify`` and the README's openssl commands check. ``409 evidence.pending`` while the bid has none
        yet; ``404 evidence.not_found`` for a version that does not exist."""
        tender_id = desk.tender_of_bid(who.tenant, bid_id)
        archive = open_archive(rt.settings)
        try:
            keys = package_files(archive, bid_prefix(tender_id, bid_id), version)
        except BidprocError as exc:
            # Nothing under that name in the store: the archivist's question, not a fault of the storage
            if exc.code is not Code.STORAGE_NOT_FOUND:
                raise
            if version is None:
                raise BidprocError(Code.EVIDENCE_PENDING, "this bid has no complete evidence package yet: "
                                   "the pipeline writes it once the bid is processed") from None
            raise BidprocError(Code.EVIDENCE_NOT_FOUND, f"this bid has no evidence package version {version}") from None
        with rt.db.session() as s:
            append(s, actor=who.tenant, action="evidence.read", subject=bid_id, now=rt.clock(),
                   detail={"key_id": who.key_id, "version": version, "files": len(keys)})
        pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=8)

        def produce() -> None:
            try:
                with zipfile.ZipFile(_Pipe(pieces), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                    for name, key in keys.items():
                        with archive.open(key) as src, zf.open(name, "w", force_zip64=True) as dst:
                            while piece := src.read(STEP):
                                dst.write(piece)
            except queue.Full:  # the client went away: nothing more to send
                return
            except Exception:  # storage failed mid-way: the ZIP is cut short, and verify will say so
                log.exception("evidence package of bid %s could not be streamed", bid_id)
            finally:
                try:
                    pieces.put(None, timeout=STALLED_SECONDS)
                except queue.Full:
                    pass

        def chunks() -> Iterator[bytes]:
            threading.Thread(target=produce, name="evidence-zip", daemon=True).start()
            while (piece := pieces.get(timeout=STALLED_SECONDS)) is not None:
                yield piece

        name = f"evidence-{bid_id}" + (f"-v{version}" if version else "")
        return StreamingResponse(chunks(), media_type="application/zip",
                                 headers={"content-disposition": f'attachment; filename="{name}.zip"'})

    return router
