"""Streaming an upload in: the event loop receives, a thread of the upload's own hashes, encrypts and writes."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bidproc.api.guards import idle_bounded
from bidproc.desk.upload import Upload
from bidproc.encryption.stream import DEFAULT_CHUNK
from bidproc.errors import BidprocError, Code

Pieces = list[bytes | memoryview]  # what the server handed over, whole or cut (views of it)

# Hand the encryptor one chunk at a time: fewer thread hops, memory stays flat, and a piece of exactly
# one chunk is sealed without a copy.
UPLOAD_BUFFER = DEFAULT_CHUNK


def split_chunk(parts: Pieces, over: int) -> tuple[Pieces, Pieces]:
    """The pieces of one chunk, and the ``over`` bytes of the last piece beyond it (views, no copy)."""
    if not over:
        return parts, []
    last = memoryview(parts[-1])
    cut = len(last) - over  # > 0: the pieces before the last one held less than a chunk
    return [*parts[:-1], last[:cut]], [last[cut:]]


async def stream_into(request: Request, up: Upload, idle_seconds: float, budget: int | None = None) -> None:
    """Receive on the event loop while a thread hashes, encrypts and writes: the two overlap on two cores.
    The thread starts with the first full chunk; a file smaller than one is written in one hop at its end.

    The loop only collects the pieces the server hands it (no copy) and cuts them at exact chunk
    boundaries (views); the thread joins each chunk once and the encryptor seals it as it is. The queue
    is bounded, so a slow disk slows the client down instead of filling memory.
    """
    pieces: queue.Queue[Pieces | None] = queue.Queue(maxsize=8)
    failure: list[BaseException] = []

    def drain() -> None:
        while (parts := pieces.get()) is not None:
            if not failure:
                try:
                    up.write(b"".join(parts))  # one copy per chunk (none for a single bytes piece)
                except BaseException as exc:  # re-raised on the event loop below
                    failure.append(exc)

    # A thread of the upload's own, not one of the shared executor's: a slow client must not hold a
    # pool thread that other requests need (uploads are capped by the semaphore instead).
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def run() -> None:
        try:
            drain()
        finally:
            loop.call_soon_threadsafe(finished)

    started: list[threading.Thread] = []

    async def hand_over(parts: Pieces) -> None:
        if not started:
            started.append(threading.Thread(target=run, name="upload-writer", daemon=True))
            started[0].start()
        try:
            pieces.put_nowait(parts)
        except queue.Full:  # the disk or the encryption is behind: wait off the loop
            await run_in_threadpool(pieces.put, parts)

    try:
        parts: Pieces = []
        held = received = 0  # held < UPLOAD_BUFFER between chunks
        async with contextlib.aclosing(idle_bounded(request.stream(), idle_seconds)) as chunks:
            async for chunk in chunks:
                received += len(chunk)
                if budget is not None and received > budget:
                    raise BidprocError(Code.QUOTA_STORAGE, "this platform's storage quota is used up")
                parts.append(chunk)
                held += len(chunk)
                while held >= UPLOAD_BUFFER and not failure:
                    whole, parts = split_chunk(parts, held - UPLOAD_BUFFER)
                    held -= UPLOAD_BUFFER
                    await hand_over(whole)
                if failure:
                    break
        if not started:  # under one chunk (most files of a bid): no thread of its own, one hop
            await run_in_threadpool(up.write, b"".join(parts))
        elif not failure and parts:
            await hand_over(parts)
    finally:
        if started:
            await run_in_threadpool(pieces.put, None)
            await done
    if failure:
        raise failure[0]
