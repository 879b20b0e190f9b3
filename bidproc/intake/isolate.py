"""Run a parser over hostile bytes in a child process with bounded CPU time, memory and wall time.

Why a child: qpdf (under pikepdf) is C++; a pathological PDF can make it loop, exhaust memory or
crash. In a child that costs one verdict (``parse.timeout`` / ``parse.crashed``), not a worker.

How: a fresh interpreter (``python -I -m bidproc.intake.isolate TASK ...``), not a fork: forking a
threaded worker can deadlock, and multiprocessing's forkserver re-imports the caller's main module.
The child sets its own limits *before* importing the parser or reading a byte — CPU seconds
(RLIMIT_CPU), address space (RLIMIT_AS), no file creation at all (RLIMIT_FSIZE = 0: no plaintext at
rest, even by accident) and no core dump (RLIMIT_CORE = 0). The input comes over stdin, never a file.
The answer comes back on stdout as a JSON header and length-prefixed byte blobs, not a pickle: a
child taken over through a qpdf bug must not be able to make the parent run code by unpickling.
"""

from __future__ import annotations

import importlib
import json
import resource
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bidproc.errors import Code

# A task takes the input bytes and returns (a JSON-able header, a list of blobs).
Task = Callable[[bytes], tuple[dict[str, Any], list[bytes]]]
_LEN = struct.Struct("<Q")


class IsolationFailure(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Bounds:
    cpu_seconds: float
    memory_bytes: int
    wall_seconds: float
    max_reply_bytes: int


def run_isolated(task: str, data: bytes, bounds: Bounds) -> tuple[dict[str, Any], list[bytes]]:
    """Run ``task`` ("module:function") on ``data`` in a bounded child; raise :class:`IsolationFailure`."""
    cpu = max(1, int(bounds.cpu_seconds + 0.999))
    argv = [sys.executable, "-I", "-m", "bidproc.intake.isolate", task, str(cpu), str(bounds.memory_bytes)]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = child.communicate(data, timeout=bounds.wall_seconds)
    except subprocess.TimeoutExpired as exc:
        child.kill()
        child.communicate()
        raise IsolationFailure(Code.PARSE_TIMEOUT, f"the parser took more than {bounds.wall_seconds:g} s") from exc
    if child.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise IsolationFailure(Code.PARSE_TIMEOUT, f"the parser used more than {cpu} s of CPU")
    if child.returncode != 0:
        raise IsolationFailure(Code.PARSE_CRASHED, f"the parser died (exit status {child.returncode})")
    if len(out) > bounds.max_reply_bytes:
        raise IsolationFailure(Code.PARSE_CRASHED, "the parser answered more than it may")
    try:
        header, blobs = _decode(out)
    except (ValueError, struct.error) as exc:
        raise IsolationFailure(Code.PARSE_CRASHED, f"the parser's answer is garbled: {exc}") from exc
    if header.get("isolation") == "memory":
        raise IsolationFailure(Code.PARSE_CRASHED, f"the parser needed more than {bounds.memory_bytes} bytes")
    return header, blobs


def _encode(header: dict[str, Any], blobs: list[bytes]) -> list[bytes]:
    raw = json.dumps({**header, "blobs": len(blobs)}).encode()
    parts = [_LEN.pack(len(raw)), raw]
    for blob in blobs:
        parts += [_LEN.pack(len(blob)), blob]
    return parts


def _decode(out: bytes) -> tuple[dict[str, Any], list[bytes]]:
    view = memoryview(out)
    (length,) = _LEN.unpack_from(view)
    header = json.loads(bytes(view[_LEN.size : _LEN.size + length]))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    at = _LEN.size + length
    blobs: list[bytes] = []
    for _ in range(int(header.pop("blobs", 0))):
        (size,) = _LEN.unpack_from(view, at)
        at += _LEN.size
        if at + size > len(out):
            raise ValueError("truncated blob")
        blobs.append(bytes(view[at : at + size]))
        at += size
    return header, blobs


# Probes run in the child like any task, to prove on a given host that the limits really hold
# (CPU, crashes, no file writes, the reply framing); the test suite runs them, operators may too.
def probe_spin(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    while True:
        pass


def probe_crash(_: bytes) -> tuple[dict[str, Any], list[bytes]]:
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return {}, []


def probe_write(directory: bytes) -> tuple[dict[str, Any], list[bytes]]:
    import os

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


def _child_main(argv: list[str]) -> int:
    task_name, cpu, memory = argv[0], int(argv[1]), int(argv[2])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    module_name, _, function = task_name.partition(":")
    try:
        task: Task = getattr(importlib.import_module(module_name), function)
        data = sys.stdin.buffer.read()
        header, blobs = task(data)
    except MemoryError:
        header, blobs = {"isolation": "memory"}, []
    for part in _encode(header, blobs):
        sys.stdout.buffer.write(part)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
