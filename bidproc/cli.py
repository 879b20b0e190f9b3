"""The ``bidproc`` command. Each subcommand lives with its stage; this file dispatches and states the
exit-code contract (:class:`Exit`) every subcommand keeps through :func:`command` and :func:`usage_error`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from enum import IntEnum
from importlib import import_module
from typing import ParamSpec

from bidproc.errors import BidprocError


class Exit(IntEnum):
    """What a ``bidproc`` subcommand's exit status means; scripts and CI rely on it."""

    OK = 0  # all good
    FAILED = 1  # the subject failed a check (a file rejected, a signature failed, the journal broken)
    USAGE = 2  # usage or environment error (bad arguments, clamd or the database down): nothing was decided


P = ParamSpec("P")


def usage_error(prog: str, problem: object) -> int:
    """Say what went wrong on stderr, as "prog: problem", and give the usage/environment exit status."""
    print(f"{prog}: {problem}", file=sys.stderr)
    return Exit.USAGE


def command(prog: str, *errors: type[Exception]) -> Callable[[Callable[P, int]], Callable[P, int]]:
    """A subcommand's ``main``: a :class:`BidprocError` (or one of ``errors``) escaping it is a usage or
    environment error (:data:`Exit.USAGE`), said on stderr, never a traceback."""
    caught: tuple[type[Exception], ...] = (BidprocError, *errors)

    def wrap(main: Callable[P, int]) -> Callable[P, int]:
        @functools.wraps(main)
        def run(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except caught as exc:
                return usage_error(prog, exc)

        return run

    return wrap

# subcommand -> "module:function"; each function takes argv (the words after the subcommand)
# and returns an exit code. Imported lazily so `bidproc check` does not load the HTTP stack.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("bidproc.intake.cli", "Run intake (detect, unpack, scan, normalise) on files, offline"),
    "verify": ("bidproc.signature.cli", "Validate the signatures of a file (PAdES, CAdES, XAdES)"),
    "trust": ("bidproc.signature.trust.cli", "EU trusted lists: refresh the cache, show each list's state"),
    "serve": ("bidproc.api.cli", "Run the HTTP API"),
    "worker": ("bidproc.pipeline.cli", "Run queue workers"),
    "up": ("bidproc.ops:up_main", "Run API and workers together on embedded defaults"),
    "demo": ("bidproc.demo", "Create a tender, submit a sample bid, follow it through the pipeline"),
    "config": ("bidproc.ops:config_main", "Show the effective configuration (secrets masked)"),
    "open": ("bidproc.encryption.cli", "Open a tender (k shares, via the API) or sealed files offline"),
    "apikey": ("bidproc.ops:apikey_main", "Create API keys for a platform (tenant)"),
    "journal": ("bidproc.ops:journal_main", "Verify the audit journal's hash chain"),
    "migrate": ("bidproc.ops:migrate_main", "Create or upgrade the database schema"),
    "evidence": ("bidproc.archive.cli:evidence_main", "Get or verify (offline) a bid's evidence package"),
    "export": ("bidproc.archive.cli:export_main", "Export a tender's evidence packages (SEDA 2.2)"),
}


def _usage() -> str:
    lines = ["usage: bidproc COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {doc}" for name, (_, doc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return Exit.OK if args else Exit.USAGE
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        return usage_error("bidproc", f"unknown command {name!r}\n\n{_usage()}")
    target = COMMANDS[name][0]
    module_name, _, func_name = target.partition(":")
    func: Callable[[list[str]], int] = getattr(import_module(module_name), func_name or "main")
    return func(rest)


if __name__ == "__main__":
    sys.exit(main())
