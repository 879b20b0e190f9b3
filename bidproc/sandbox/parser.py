"""The parser sandbox: one parser run over hostile bytes in a forked child with bounded CPU, memory and time.

Why a child: qpdf (under pikepdf) is C++; a pathological PDF can make it loop, exhaust memory or
crash. In a child that costs one verdict (``parse.timeout`` / ``parse.crashed``), not a worker.

How: a *zygote* — a clean interpreter of our own (``python -I``, running :func:`_zygote_main`),
single-threaded, with pikepdf already imported — forks one child per task. Forking the zygote costs
milliseconds where starting an interpreter costs ~200 ms per PDF; forking the (threaded) worker
itself could deadlock, and multiprocessing's forkserver would re-run the caller's main module.
Each task gets its own socket pair (one end handed to the zygote with SCM_RIGHTS), so concurrent
callers never share a channel. Before reading a byte, the child limits itself: CPU seconds
(RLIMIT_CPU), address space (RLIMIT_AS), a wall-clock alarm (SIGALRM, which kills it even inside C
code), no file creation at all (RLIMIT_FSIZE = 0: no plaintext at rest, even by accident) and no core
dump. Input and answer travel over the socket: the answer is a JSON header and length-prefixed
blobs, not a pickle, so a child taken over through a qpdf bug cannot make the parent run code.

Environment or document: limits are only ever lowered (:mod:`bidproc.sandbox.rlimits`: an inherited
``ulimit -v`` lower than ours is kept, not fought), and the child says it is *ready* — limits set,
task imported, enough address space left — before the parent sends it the input. A zygote or child
that dies, fails or is short of memory before that handshake never saw the document: the parent
answers ``parse.unavailable`` (retry later), never a verdict on the file.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bidproc.errors import Code
from bidproc.sandbox import SandboxFailure, rlimits

# A task takes the input bytes and returns (a JSON-able header, a list of blobs).
Task = Callable[[bytes], tuple[dict[str, Any], list[bytes]]]
_LEN = struct.Struct("<Q")
_PRELOAD = ("bidproc.intake.pdfclean",)
_READY = b"R"  # the zygote's one-byte "preloaded, listening"
# The zygote runs the very bidproc the parent runs (-I ignores PYTHONPATH, and an installed copy may
# be another one): its package root goes first on the zygote's path.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from bidproc.sandbox.parser import _zygote_main; "
         "sys.exit(_zygote_main(int(sys.argv[2])))")
# Forking and setting limits takes milliseconds; this only bounds a wedged or starved machine.
READY_SECONDS = 30.0


@dataclass(frozen=True)
class ParserLimits:
    cpu_seconds: float
    memory_bytes: int
    wall_seconds: float
    max_reply_bytes: int


class _Zygote:
    """The parent's handle on its zygote: started lazily, restarted if it died or we forked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pid = 0

    def _start(self) -> socket.socket:
        """Start a zygote and wait until it has preloaded its modules; OSError if it cannot."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-I", "-c", _BOOT, _PACKAGE_ROOT, str(theirs.fileno())]
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        try:
            ours.settimeout(READY_SECONDS)
            ready = ours.recv(1)
            ours.settimeout(None)
        except OSError:
            ready = b""
        if ready != _READY:
            ours.close()
            self._process.kill()
            status = self._process.wait()
            raise OSError(f"the parser zygote exited before it was ready (status {status})")
        self._control, self._pid = ours, os.getpid()
        return ours

    def submit(self, order: dict[str, Any]) -> socket.socket:
        """Hand a fresh socket to the zygote for one child; return our end of it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        message = json.dumps(order).encode()
        try:
            with self._lock:
                for attempt in (1, 2):
                    try:
                        control = self._control
                        if (control is None or self._pid != os.getpid()
                                or (self._process and self._process.poll() is not None)):
                            control = self._start()
                        socket.send_fds(control, [_LEN.pack(len(message)) + message], [theirs.fileno()])
                        break
                    except OSError:
                        self._control = None
                        if attempt == 2:
                            raise
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def close(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote exits when its control socket closes
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


_zygote = _Zygote()
atexit.register(_zygote.close)


def run_parser(task: str, data: bytes, limits: ParserLimits) -> tuple[dict[str, Any], list[bytes]]:
    """Run ``task`` ("module:function") on ``data`` in a bounded child; raise :class:`SandboxFailure`."""
    cpu = max(1, int(limits.cpu_seconds + 0.999))
    wall = max(1, int(limits.wall_seconds + 0.999))
    try:
        channel = _zygote.submit({"task": task, "cpu": cpu, "memory": limits.memory_bytes, "wall": wall})
    except OSError as exc:  # not the file's fault: the caller retries later
        raise SandboxFailure(Code.PARSE_UNAVAILABLE, f"the parser sandbox cannot start: {exc}") from exc
    with channel:
        hello = _handshake(channel)
        started = time.monotonic()
        channel.settimeout(limits.wall_seconds + 2)
        reply = bytearray()
        try:
            channel.sendall(_LEN.pack(len(data)) + data)
            while chunk := channel.recv(1 << 20):
                reply += chunk
                if len(reply) > limits.max_reply_bytes:
                    raise SandboxFailure(Code.PARSE_CRASHED, "the parser answered more than it may")
        except TimeoutError as exc:
            raise SandboxFailure(Code.PARSE_TIMEOUT, f"the parser took more than {limits.wall_seconds:g} s") from exc
        except OSError:
            pass  # the child died while we talked to it: judged below by what it managed to say
    try:
        header, blobs = _decode(bytes(reply))
    except (ValueError, struct.error) as exc:
        elapsed = time.monotonic() - started
        # killed by RLIMIT_CPU or its alarm (which take at least that long), or it crashed
        if elapsed >= min(cpu, wall) * 0.9 or elapsed >= limits.wall_seconds:
            raise SandboxFailure(Code.PARSE_TIMEOUT, f"the parser was stopped after {elapsed:.1f} s") from exc
        raise SandboxFailure(Code.PARSE_CRASHED, "the parser died without answering") from exc
    if header.get("isolation") == "memory":
        raise SandboxFailure(Code.PARSE_CRASHED, f"the parser needed more than {hello.get('memory', '')}")
    if header.get("isolation") == "error":
        raise SandboxFailure(Code.PARSE_CRASHED, f"the parser failed: {header.get('error', '')}"[:500])
    return header, blobs


def _handshake(channel: socket.socket) -> dict[str, Any]:
    """The child's "ready" (limits set, task imported, headroom checked), before it gets any input."""
    channel.settimeout(READY_SECONDS)
    try:
        (length,) = _LEN.unpack(_recv_exactly(channel, _LEN.size))
        hello = json.loads(_recv_exactly(channel, min(length, 1 << 16)))
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise SandboxFailure(Code.PARSE_UNAVAILABLE, "the parser sandbox died before it was ready") from exc
    if not isinstance(hello, dict) or hello.get("ready") is not True:
        problem = hello.get("problem", "") if isinstance(hello, dict) else ""
        raise SandboxFailure(Code.PARSE_UNAVAILABLE, f"the parser sandbox is not usable: {problem}"[:500])
    return hello


def _encode(header: dict[str, Any], blobs: list[bytes]) -> list[bytes]:
    raw = json.dumps({**header, "blobs": len(blobs)}).encode()
    parts = [_LEN.pack(len(raw)), raw]
    for blob in blobs:
        parts += [_LEN.pack(len(blob)), blob]
    return parts


def _decode(out: bytes) -> tuple[dict[str, Any], list[bytes]]:
    view = memoryview(out)
    (length,) = _LEN.unpack_from(view)
    if _LEN.size + length > len(out):
        raise ValueError("truncated header")
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
    if at != len(out):
        raise ValueError("trailing bytes")
    return header, blobs


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(min(1 << 20, size - len(out)))
        if not chunk:
            raise EOFError("the parent hung up")
        out += chunk
    return bytes(out)


def _child(channel: socket.socket, order: dict[str, Any]) -> None:
    """In the forked child: limit ourselves, read the input, run the task, answer, exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.alarm(order["wall"])
    module_name, _, function = str(order["task"]).partition(":")
    hello: dict[str, Any]
    try:
        rlimits.lower(resource.RLIMIT_CPU, order["cpu"], order["cpu"] + 1)
        budget = rlimits.limit_memory(order["memory"])
        rlimits.lower(resource.RLIMIT_FSIZE, 0)
        rlimits.lower(resource.RLIMIT_CORE, 0)
        task: Task = getattr(importlib.import_module(module_name), function)
        problem = rlimits.unfit(budget)
        hello = {"ready": True, "memory": budget.describe()} if problem is None else {"problem": problem}
    except Exception as exc:  # no document yet: whatever fails here is the environment's doing
        hello = {"problem": f"{type(exc).__name__}: {exc}"[:300]}
    raw = json.dumps(hello).encode()
    channel.sendall(_LEN.pack(len(raw)) + raw)
    if not hello.get("ready"):
        return
    try:
        (size,) = _LEN.unpack(_recv_exactly(channel, _LEN.size))
        header, blobs = task(_recv_exactly(channel, size))
    except MemoryError:
        header, blobs = {"isolation": "memory"}, []
    except Exception as exc:  # an unforeseen failure on this input: said, so it can be diagnosed
        header, blobs = {"isolation": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}, []
    for part in _encode(header, blobs):
        channel.sendall(part)
    channel.shutdown(socket.SHUT_RDWR)


def _zygote_main(control_fd: int) -> int:
    for module in _PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    control.sendall(_READY)
    while True:
        try:
            head, fds, _, _ = socket.recv_fds(control, _LEN.size, 1)
            if len(head) < _LEN.size or not fds:
                return 0  # the parent is gone
            (length,) = _LEN.unpack(head)
            order = json.loads(_recv_exactly(control, length))
        except (OSError, EOFError, ValueError):
            return 0
        if os.fork() == 0:
            control.close()
            status = 0
            try:
                _child(socket.socket(fileno=fds[0]), order)
            except BaseException:  # whatever happens, the child must not return into the loop
                status = 1
            os._exit(status)
        os.close(fds[0])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        sys.exit(_zygote_main(int(sys.argv[2])))
    sys.exit(2)
