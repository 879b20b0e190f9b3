"""The plaintext's SHA-256, computed on a helper thread while the caller encrypts and writes.

SHA-256 is the slowest step of sealing (about 1.2 GB/s on one core without SHA extensions, against
5-9 GB/s for AES-256-GCM): hashing a chunk beside its encryption and its write, instead of before
them, is most of what separates sealing from raw GCM over the same file (bench/seal.py). hashlib
releases the GIL while it hashes a buffer, so one helper thread is enough.

An executor per digest, not a shared one: a module-level pool created before a worker process forks
would leave the child a pool whose thread is gone.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

# Below this, handing a buffer to the helper thread costs more than hashing it here.
_MIN_BACKGROUND = 64 << 10


class BackgroundSha256:
    """``start(data)`` hashes ``data`` in the background; ``join()`` waits for it.

    The caller must not change ``data`` between the two calls (a reused read buffer is fine once
    ``join()`` has returned). Chunks are hashed in the order given: ``start`` joins the previous one.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    def start(self, data: bytes | memoryview) -> None:
        self.join()
        if len(data) < _MIN_BACKGROUND:
            self._sha.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bidproc-sha256")
        self._pending = self._pool.submit(self._sha.update, data)

    def join(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def hexdigest(self) -> str:
        self.join()
        self.close()
        return self._sha.hexdigest()

    def close(self) -> None:
        """Lets the helper thread go (idempotent; also what an abandoned digest's finaliser does)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class NoDigest:
    """For callers that already hold the content's hash (``digest=False``)."""

    def start(self, data: bytes | memoryview) -> None:
        pass

    def join(self) -> None:
        pass

    def hexdigest(self) -> None:
        return None

    def close(self) -> None:
        pass
