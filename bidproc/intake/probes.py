"""Probes run in the parser sandbox like any task, to prove on a given host that the sandbox's limits
hold (CPU time, crashes, no file writes, the reply framing). The test suite runs them; operators may.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any


def probe_spin(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    while True:
        pass


def probe_sleep(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    import time

    time.sleep(3600)  # blocked, not using CPU: only the wall-clock alarm ends it
    return {}, []


def probe_crash(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return {}, []


def probe_write(directory: bytes) -> tuple[dict[str, Any], list[bytes]]:
    path = os.path.join(directory.decode(), "plaintext.bin")
    try:
        with open(path, "wb") as f:
            f.write(b"secret bid")
            f.flush()
    except OSError:
        pass
    return {"wrote": os.path.exists(path) and os.path.getsize(path) > 0}, []


def probe_echo(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    return {"n": len(data)}, [data, b""]


def probe_raise(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    raise ValueError("this input makes the task fail")


def probe_hog(size: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Allocate (and touch) as many bytes as the input says: what a decompression bomb does."""
    blob = bytearray(int(size))
    return {"n": len(blob)}, []
