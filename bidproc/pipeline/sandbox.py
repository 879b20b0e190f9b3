"""Intake of each document in a child process with bounded memory and time.

Unpacking ZIPs, parsing XML and CMS, libmagic: all of it reads hostile bytes. The worker itself never
does: a child process (one per bid's intake stage, reused from document to document) runs
:func:`bidproc.pipeline.stages.intake_document` under an address-space limit, and the worker gives each
document a deadline. A document that exhausts memory, crashes the child or overruns its time gets a
``parse.crashed`` / ``parse.timeout`` verdict; a new child takes the next document. The worker carries on.
(PDF parsing is isolated once more inside, by :mod:`bidproc.intake.isolate`.)

A sandbox that fails *before* its first document is the environment's fault, not a document's: the
child lowers (never raises) its limits, loads its code, checks it has room left, and only then says
"ready". Without that handshake — the spawn fails, the child dies or stalls, an inherited ``ulimit -v``
leaves it too little — :meth:`IntakeSandbox.inspect` raises ``parse.unavailable``, which the pipeline
retries like ``scan.unavailable``; no document gets a verdict from a sandbox that never worked.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bidproc.config import Settings
from bidproc.errors import BidprocError, Code
from bidproc.intake import rlimits
from bidproc.intake.limits import IntakeLimits

# Spawning an interpreter and importing the intake code takes a second or two; this bounds a stall.
READY_SECONDS = 60.0


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 3 << 30
    base_seconds: float = 300.0  # per document, plus the time to read it at min_bytes_per_second
    min_bytes_per_second: int = 10 << 20

    def seconds_for(self, size: int) -> float:
        return self.base_seconds + size / self.min_bytes_per_second


def _child(conn: Connection, settings: Settings, key: bytes, limits: IntakeLimits, memory_bytes: int) -> None:
    try:
        budget = rlimits.limit_memory(memory_bytes)
        rlimits.lower(resource.RLIMIT_CORE, 0)
        from bidproc.metadata.models import DocumentRow
        from bidproc.pipeline import stages
        from bidproc.runtime import Runtime

        rt = Runtime(settings)  # the store and clamd only: the child never touches the database
        problem = rlimits.unfit(budget)
    except Exception as exc:  # no document yet: the environment's doing, said to the parent
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        conn.send(("unavailable", problem[:500]))
        return
    conn.send(("ready", budget.describe()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        doc = DocumentRow(id=request["id"], name=request["name"], object_key=request["object_key"],
                          sha256=request["sha256"], size=request["size"])
        try:
            conn.send(("ok", stages.intake_document(rt, key, doc, request["prefix"], limits)))
        except BidprocError as exc:
            conn.send(("error", exc.code.value, exc.message))
        except MemoryError:
            conn.send(("crash", f"the intake sandbox needed more than its {budget.describe()}"))
        except Exception as exc:  # reported as this document's verdict; the child stays usable
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))


class IntakeSandbox:
    def __init__(self, settings: Settings, key: bytes, limits: IntakeLimits,
                 sandbox: SandboxLimits = SandboxLimits()) -> None:
        self._args = (settings, key, limits, sandbox.memory_bytes)
        self._sandbox = sandbox
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        """The running child, started and ready; ``parse.unavailable`` if it cannot be had."""
        if self._conn is not None:
            return self._conn
        # spawn, not fork: the worker has threads (dramatiq, leases) whose locks a fork would copy.
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._conn = parent
        started = time.monotonic()
        try:
            proc = ctx.Process(target=_child, args=(child, *self._args), name="intake-sandbox", daemon=True)
            proc.start()
            self._proc = proc
            child.close()  # now only the child holds its end: its death reads as EOF here
            hello = parent.recv() if parent.poll(READY_SECONDS) else ("unavailable", "no answer")
        except Exception as exc:  # could not spawn (fork, pickling), or died before saying anything
            hello = ("unavailable", f"{type(exc).__name__}: {exc}" if str(exc) else "it died while starting")
        finally:
            child.close()
        if hello[0] != "ready":
            self._kill()
            raise BidprocError(Code.PARSE_UNAVAILABLE,
                               f"the intake sandbox did not start ({time.monotonic() - started:.1f} s): {hello[1]}")
        return parent

    def _send(self, request: dict[str, Any]) -> Connection:
        """Hand the document to a live, ready child. A child that died while idle (between documents)
        never had this one: it is replaced, and only a replacement that cannot start is reported."""
        for attempt in (1, 2):
            conn = self._start()
            try:
                if self._proc is not None and not self._proc.is_alive():
                    raise BrokenPipeError("the intake sandbox exited while idle")
                conn.send(request)
                return conn
            except OSError as exc:
                self._kill()
                if attempt == 2:
                    raise BidprocError(Code.PARSE_UNAVAILABLE, f"the intake sandbox cannot be reached: {exc}") from exc
        raise AssertionError("unreachable")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def inspect(self, *, doc_id: str, name: str, object_key: str, sha256: str, size: int,
                prefix: str) -> dict[str, Any]:
        """What the documents row records for this document, or a verdict for a sandbox failure.

        Errors meaning "retry later" (clamd or storage unavailable) are raised, as in the worker.
        """
        conn = self._send({"id": doc_id, "name": name, "object_key": object_key, "sha256": sha256, "size": size,
                           "prefix": prefix})
        seconds = self._sandbox.seconds_for(size)
        try:
            ready = conn.poll(seconds)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            self._kill()
            return _refused(Code.PARSE_CRASHED, "the intake sandbox died on this document")
        if reply is None:
            self._kill()
            return _refused(Code.PARSE_TIMEOUT, f"intake took more than {seconds:.0f} s")
        if reply[0] == "ok":
            result: dict[str, Any] = reply[1]
            return result
        if reply[0] == "error":
            raise BidprocError(Code(reply[1]), reply[2])
        self._kill()  # after a MemoryError or a bug, start afresh for the next document
        return _refused(Code.PARSE_CRASHED, str(reply[1]))

    def close(self) -> None:
        self._kill()

    def __enter__(self) -> IntakeSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _refused(code: Code, message: str) -> dict[str, Any]:
    return {"verdict": "rejected", "code": code.value, "detail": {"report": {}, "malware": [], "message": message}}
