"""``bidproc check FILE... [--format json|text] [--clamd HOST:PORT] [--config TOML]``: intake alone, offline.

Prints one verdict per file (a JSON array with ``--format json``). Exit 0 when every file is
accepted, 1 when any is rejected or quarantined, 2 on a usage or environment error (a file that
cannot be read, clamd unreachable: nothing was decided, so nothing is reported as a verdict).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import BinaryIO

from bidproc.cli import Exit, command, usage_error
from bidproc.config import ClamdSettings, load_settings
from bidproc.intake.inspect import inspect
from bidproc.intake.limits import KINDS, IntakeLimits
from bidproc.intake.scan import ClamdScanner
from bidproc.intake.verdict import FileVerdict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bidproc check", description="Run intake (detect, unpack, scan, normalise).")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--format", choices=["json", "text"], default="text")
    parser.add_argument("--clamd", metavar="HOST:PORT", help="clamd address (default: the configured one)")
    parser.add_argument("--config", metavar="TOML", help="configuration file for the clamd address "
                        "(default: $BIDPROC_CONFIG, else config/bidproc.toml if present)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="KIND",
        choices=sorted(KINDS),
        help="also accept files of this kind (repeatable)",
    )
    return parser


def _clamd(address: str | None, config: str | None = None) -> ClamdSettings:
    if not address:
        return load_settings(config).clamd
    configured = ClamdSettings()  # an explicit address needs no configuration file at all
    if address.startswith("/"):
        return dataclasses.replace(configured, socket=address)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--clamd wants HOST:PORT or a socket path, not {address!r}")
    return dataclasses.replace(configured, socket="", host=host, port=int(port))


def _text(verdict: FileVerdict, indent: str = "") -> list[str]:
    line = f"{indent}{verdict.file}: {verdict.verdict.value}"
    if verdict.code:
        line += f" ({verdict.code})"
    line += f" [{verdict.kind}, {verdict.size} bytes, sha256 {verdict.sha256[:16]}]"
    if verdict.warnings:
        line += " warnings: " + ", ".join(verdict.warnings)
    lines = [line]
    if verdict.message and not verdict.accepted:
        lines.append(f"{indent}  {verdict.message}")
    lines += [f"{indent}  malware {t.signature} in {t.path}" for t in verdict.malware if not indent]
    lines += [f"{indent}  rendition {r.name} ({', '.join(r.actions)})" for r in verdict.renditions]
    for member in verdict.members:
        lines += _text(member, indent + "  ")
    return lines


@command("bidproc check", OSError)
def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        settings = _clamd(args.clamd, args.config)
    except ValueError as exc:  # an address that is not HOST:PORT or a socket path
        return usage_error("bidproc check", exc)
    limits = dataclasses.replace(IntakeLimits(), allowed_kinds=IntakeLimits().allowed_kinds | set(args.allow))
    scanner = ClamdScanner(settings)
    verdicts: list[FileVerdict] = []
    scanner.ping()
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            return usage_error("bidproc check", f"{name}: not a readable file")

        def opener(path: Path = path) -> BinaryIO:
            return path.open("rb")

        verdicts.append(inspect(path.name, opener, scanner, limits))
    if args.format == "json":
        print(json.dumps([v.to_json() for v in verdicts], indent=2, ensure_ascii=False))
    else:
        for verdict in verdicts:
            print("\n".join(_text(verdict)))
    return Exit.OK if all(v.accepted for v in verdicts) else Exit.FAILED
