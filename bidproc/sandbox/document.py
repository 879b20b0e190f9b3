"""The document sandbox: the intake of each document in a child process with bounded memory and time.

Unpacking ZIPs, parsing XML and CMS, libmagic: all of it reads hostile bytes. The worker itself never
does: a child process (one per bid's intake stage, reused from document to document, forked from a
preloaded forkserver: see :func:`_context`) runs the task the
caller names (``"module:function"``, e.g. :func:`bidproc.pipeline.stages.intake_in_sandbox`) under an
address-space limit, and the worker gives each document a deadline. A document that exhausts memory,
crashes the child or overruns its time raises :class:`~bidproc.sandbox.SandboxFailure` (``parse.crashed``
/ ``parse.timeout``: a verdict on that document); a new child takes the next document. The worker
carries on. (PDF parsing is sandboxed once more inside, by :mod:`bidproc.sandbox.parser`.)

A sandbox that fails *before* its first document is the environment's fault, not a document's: the
child lowers (never raises) its limits, loads its code, checks it has room left, and only then says
"ready". Without that handshake — the fork fails, the child dies or stalls, an inherited ``ulimit -v``
leaves it too little — :meth:`DocumentSandbox.run` raises ``parse.unavailable``, which the pipeline
retries like ``scan.unavailable``; no document gets a verdict from a sandbox that never worked.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.context
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bidproc.errors import BidprocError, Code
from bidproc.sandbox import SandboxFailure, rlimits

# The first sandbox of a process starts the forkserver, which imports the intake code (a second or two
# under load); this bounds a stall.
READY_SECONDS = 60.0


@dataclass(frozen=True)
class DocumentLimits:
    memory_bytes: int = 3 << 30
    base_seconds: float = 300.0  # per document, plus the time to read it at min_bytes_per_second
    min_bytes_per_second: int = 10 << 20

    def seconds_for(self, size: int) -> float:
        return self.base_seconds + size / self.min_bytes_per_second


def _child(conn: Connection, task: str, setup: tuple[Any, ...], memory_bytes: int) -> None:
    try:
        budget = rlimits.limit_memory(memory_bytes)
        rlimits.lower(resource.RLIMIT_CORE, 0)
        module_name, _, function = task.partition(":")
        factory: Callable[..., Callable[[Any], Any]] = getattr(importlib.import_module(module_name), function)
        handle = factory(*setup)
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
        try:
            conn.send(("ok", handle(request)))
        except BidprocError as exc:
            conn.send(("error", exc.code.value, exc.message))
        except MemoryError:
            conn.send(("crash", f"the document sandbox needed more than its {budget.describe()}"))
        except Exception as exc:  # reported as this document's verdict; the child stays usable
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))


def _context(task: str) -> multiprocessing.context.ForkServerContext:
    """multiprocessing's forkserver, its server having imported the task's module once.

    Not fork: the worker has threads (dramatiq, leases) whose locks a fork would copy. Not spawn: each
    child would start an interpreter and import the intake code (pyhanko, the runtime), one to two
    seconds of CPU per bid, most of a bid's cost. The forkserver is a clean single-threaded process
    started once per worker process; each sandbox is a fork of it (milliseconds), so every bid still
    gets a child of its own. The caller's main module is preloaded too (by path for a script, by name
    for ``python -m``): each child re-runs it as ``__mp_main__``, which is cheap once its imports are
    there (it is what spawn did as well).
    """
    ctx = multiprocessing.get_context("forkserver")
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    by_name = [main_spec.name] if main_spec is not None and main_spec.name else []
    ctx.set_forkserver_preload(["__main__", *by_name, task.partition(":")[0]])
    return ctx


class DocumentSandbox:
    """``task`` ("module:function") is called once in the child with ``*setup`` and returns the function
    each :meth:`run` request is given to; requests and answers travel pickled (the task is our code)."""

    def __init__(self, task: str, setup: tuple[Any, ...], limits: DocumentLimits = DocumentLimits()) -> None:
        self._args = (task, setup, limits.memory_bytes)
        self._limits = limits
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        """The running child, started and ready; ``parse.unavailable`` if it cannot be had."""
        if self._conn is not None:
            return self._conn
        ctx = _context(self._args[0])
        parent, child = ctx.Pipe()
        self._conn = parent
        started = time.monotonic()
        try:
            proc = ctx.Process(target=_child, args=(child, *self._args), name="document-sandbox", daemon=True)
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
            took = f"{time.monotonic() - started:.1f} s"
            raise SandboxFailure(Code.PARSE_UNAVAILABLE, f"the document sandbox did not start ({took}): {hello[1]}")
        return parent

    def _send(self, request: Any) -> Connection:
        """Hand the document to a live, ready child. A child that died while idle (between documents)
        never had this one: it is replaced, and only a replacement that cannot start is reported."""
        for attempt in (1, 2):
            conn = self._start()
            try:
                if self._proc is not None and not self._proc.is_alive():
                    raise BrokenPipeError("the document sandbox exited while idle")
                conn.send(request)
                return conn
            except OSError as exc:
                self._kill()
                if attempt == 2:
                    raise SandboxFailure(Code.PARSE_UNAVAILABLE,
                                         f"the document sandbox cannot be reached: {exc}") from exc
        raise AssertionError("unreachable")

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def run(self, request: Any, size: int) -> Any:
        """The task's answer for ``request`` (a document of ``size`` bytes, which sets its deadline).

        :class:`SandboxFailure` when the child died on it or overran (``parse.crashed``, ``parse.timeout``)
        or could not be had (``parse.unavailable``); the task's own errors (clamd or storage unavailable:
        "retry later") are raised as they were in the child.
        """
        conn = self._send(request)
        seconds = self._limits.seconds_for(size)
        try:
            ready = conn.poll(seconds)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            self._kill()
            raise SandboxFailure(Code.PARSE_CRASHED, "the document sandbox died on this document") from None
        if reply is None:
            self._kill()
            raise SandboxFailure(Code.PARSE_TIMEOUT, f"intake took more than {seconds:.0f} s")
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise BidprocError(Code(reply[1]), reply[2])
        self._kill()  # after a MemoryError or a bug, start afresh for the next document
        raise SandboxFailure(Code.PARSE_CRASHED, str(reply[1]))

    def close(self) -> None:
        self._kill()

    def __enter__(self) -> DocumentSandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

