"""The sandboxes: work on hostile bytes in bounded child processes, so a bad file costs one verdict.

Two sandboxes, nested, each with one name:

- the **document sandbox** (:mod:`bidproc.sandbox.document`, :class:`DocumentSandbox`): the pipeline's
  intake stage runs each document of a bid (unpack, detect, scan, XML and CMS parsing) in a child
  forked from multiprocessing's forkserver (the intake code preloaded once per worker process) under an
  address-space limit and a per-document deadline; one child per bid's intake, reused from document to
  document.
- the **parser sandbox** (:mod:`bidproc.sandbox.parser`, :func:`run_parser`): inside that, each PDF
  parse (pikepdf/qpdf, C++) runs in a child forked from a preloaded zygote, with CPU, memory, wall and
  no-file-creation limits, answering in JSON and blobs rather than pickles.

Why one package of their own, not ``intake/`` or ``pipeline/``: both are process plumbing, not stage
logic, and share :mod:`bidproc.sandbox.rlimits` (limits only ever lowered, the "ready" handshake that
tells an environment failure from a document's). Neither imports a stage: the work is named by the
caller ("module:function"), so the package sits below pipeline and intake and imports neither.

Both fail the same way, with :class:`SandboxFailure`: ``parse.unavailable`` when the sandbox could not
start (the environment's doing: retried, never a verdict), ``parse.crashed`` / ``parse.timeout`` when the
input made it die or overrun (a verdict on that input).
"""

from __future__ import annotations

from bidproc.errors import BidprocError, Code


class SandboxFailure(BidprocError):
    """A sandbox that failed: before the input (``parse.unavailable``) or because of it (crashed, timeout)."""

    @property
    def on_input(self) -> bool:
        """True when the input is to blame (a verdict on it); False when the sandbox never got to it."""
        return self.code is not Code.PARSE_UNAVAILABLE
