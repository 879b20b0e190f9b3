"""``bidproc trust refresh|show``: fetch the EU trusted lists into the cache, or show each list's state.

``refresh`` downloads the LOTL (``--lotl URL`` or ``signature.lotl``) and every national list it points
to into ``<data_dir>/trusted-lists``; a list that does not verify never replaces the last good copy.
Run it from cron (or let validation refresh a copy older than ``signature.trust_refresh_hours``).
``show`` prints, for each list: territory, when fetched, next update, signature status, and whether it
is used. Exit codes: 0 every list usable, 1 a list was skipped or failed, 2 usage or environment error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bidproc.cli import usage_error
from bidproc.errors import BidprocError
from bidproc.signature.trust.documents import ListStatus
from bidproc.signature.trust.source import TrustOptions, is_url, load_lists, refresh_online

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bidproc.config import Settings

EU_LOTL_URL = "https://ec.europa.eu/tools/lotl/eu-lotl.xml"


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in value.split(":") if p)


def trust_options(lotl: str | None, trusted_lists: list[Path], offline: bool) -> TrustOptions:
    """Command-line values over the configuration's ``[signature]`` trust keys."""
    from bidproc.config import Settings, load_settings

    try:
        settings = load_settings()
    except BidprocError:
        settings = Settings()
    return options_from_settings(settings, lotl, trusted_lists, offline)


def options_from_settings(
    settings: Settings, lotl: str | None = None, trusted_lists: Sequence[Path] = (), offline: bool = False
) -> TrustOptions:
    """The ``[signature]`` trust keys of ``settings`` (the pipeline's), with command-line values over them."""
    sig = settings.signature
    return TrustOptions(
        lotl=lotl or sig.lotl or None,
        trusted_lists=tuple(trusted_lists) or _paths(sig.trusted_list_files),
        equivalent_ca_files=_paths(sig.equivalent_ca_files),
        lotl_signer_files=_paths(sig.lotl_signer_files),
        cache_dir=settings.data_path / "trusted-lists",
        refresh_after=timedelta(hours=sig.trust_refresh_hours),
        offline=offline or sig.offline,
    )


def _line(s: ListStatus) -> dict[str, object]:
    return {
        "kind": s.kind,
        "territory": s.territory,
        "source": s.source,
        "fetched_at": s.fetched_at.isoformat() if s.fetched_at else None,
        "issued": s.issued.isoformat() if s.issued else None,
        "next_update": s.next_update.isoformat() if s.next_update else None,
        "signature": s.signature,
        "expired": s.expired,
        "used": s.used,
        "services": s.services,
        "problem": s.problem,
    }


def _text(s: ListStatus) -> str:
    fetched = s.fetched_at.isoformat(timespec="seconds") if s.fetched_at else "file"
    nxt = s.next_update.isoformat(timespec="seconds") if s.next_update else "-"
    state = "used" if s.used else "SKIPPED"
    extra = f"  ({s.problem})" if s.problem else ""
    return (
        f"{s.kind:<4} {s.territory:<3} fetched {fetched:<25} next update {nxt:<25} "
        f"signature {s.signature:<13} {state}{extra}"
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bidproc trust", description="EU trusted lists (qualified status).")
    p.add_argument("action", choices=("refresh", "show"))
    p.add_argument(
        "--lotl", metavar="FILE|URL", help=f"list of trusted lists (default: signature.lotl, else {EU_LOTL_URL})"
    )
    p.add_argument("--trusted-list", type=Path, action="append", default=[], metavar="FILE")
    p.add_argument("--offline", action="store_true", help="show: use the cached copies, never download")
    p.add_argument("--at", help="show: judge freshness at this time (ISO 8601; default now)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    options = trust_options(args.lotl, args.trusted_list, args.offline)
    refresh_problems: list[str] = []
    if options.lotl is None and not options.trusted_lists:
        options = replace(options, lotl=EU_LOTL_URL)
    try:
        at = datetime.fromisoformat(args.at.replace("Z", "+00:00")) if args.at else None
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if args.action == "refresh":
            if options.lotl is None or not is_url(options.lotl):
                return usage_error("bidproc trust refresh", "needs a LOTL URL (--lotl or signature.lotl)")
            if options.offline:
                return usage_error("bidproc trust refresh", "cannot refresh offline")
            _, _, refresh_problems = refresh_online(options)
        lists = load_lists(replace(options, offline=True), at)
    except (OSError, ValueError) as exc:
        return usage_error("bidproc trust", exc)
    statuses = lists.lists if lists is not None else ()
    if args.format == "json":
        print(json.dumps([_line(s) for s in statuses], indent=2))
    else:
        if not statuses:
            print("no trusted list cached or given (run `bidproc trust refresh`)")
        for s in statuses:
            print(_text(s))
    for problem in refresh_problems:  # what this refresh could not fetch or verify (the cache kept the rest)
        print(f"refresh: {problem}", file=sys.stderr)
    ok = statuses and all(s.used and not s.problem for s in statuses) and not refresh_problems
    return 0 if ok else 1
