"""The ``bidproc`` command. Each subcommand lives with its stage; this file only dispatches.

Exit codes: 0 all good, 1 the subject failed a check, 2 usage or environment error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module

# subcommand -> "module:function"; each function takes argv (the words after the subcommand)
# and returns an exit code. Imported lazily so `bidproc check` does not load the HTTP stack.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("bidproc.intake.cli", "Run intake (detect, unpack, scan, normalise) on files, offline"),
    "verify": ("bidproc.signature.cli", "Validate the signatures of a file (PAdES, CAdES, XAdES)"),
    "trust": ("bidproc.signature.trust.cli", "EU trusted lists: refresh the cache, show each list's state"),
    "serve": ("bidproc.api.cli", "Run the HTTP API"),
    "worker": ("bidproc.pipeline.cli", "Run queue workers"),
    "up": ("bidproc.ops:up_main", "Run API and workers together on embedded defaults"),
    "demo": ("bidproc.ops:demo_main", "Create a tender, submit a sample bid, follow it through the pipeline"),
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
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"bidproc: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target = COMMANDS[name][0]
    module_name, _, func_name = target.partition(":")
    func: Callable[[list[str]], int] = getattr(import_module(module_name), func_name or "main")
    return func(rest)


if __name__ == "__main__":
    sys.exit(main())
