"""``bidproc verify --serve``: the verification page on a lawyer's own machine (loopback by default).

The same page as the service's ``GET /verify`` (bidproc.api.verify_page), with nothing else: no
database, no queue, no API keys. Validation uses the trust anchors and trusted lists given here (or
the configuration's); the PDF reports are sealed with the local data directory's seal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bidproc.cli import usage_error
from bidproc.errors import BidprocError


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bidproc verify --serve", description="Serve the verification page.")
    p.add_argument("--serve", action="store_true", required=True)
    p.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--trust-anchor", type=Path, action="append", default=[], metavar="PEM")
    p.add_argument("--lotl", help="EU list of trusted lists (file or URL)")
    p.add_argument("--trusted-list", type=Path, action="append", default=[], metavar="XML")
    p.add_argument("--offline", action="store_true")
    p.add_argument("--max-mb", type=int, default=50)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    import uvicorn
    from fastapi import FastAPI

    from bidproc import __version__
    from bidproc.api.handlers import install
    from bidproc.api.verify_page import verify_router
    from bidproc.config import load_settings, replace
    from bidproc.runtime import Runtime

    for path in [*args.trust_anchor, *args.trusted_list]:
        if not path.is_file():
            return usage_error("bidproc verify --serve", f"cannot read {path}")
    try:
        settings = load_settings()
        signature: dict[str, object] = {"offline": args.offline or settings.signature.offline}
        if args.trust_anchor:
            signature["trust_anchor_files"] = ":".join(str(p) for p in args.trust_anchor)
        if args.lotl:
            signature["lotl"] = args.lotl
        if args.trusted_list:
            signature["trusted_list_files"] = ":".join(str(p) for p in args.trusted_list)
        settings = replace(settings, signature=signature,
                           api={"verify_page": True, "verify_page_max_bytes": args.max_mb << 20})
        rt = Runtime(settings)
        app = FastAPI(title="bidproc verification page", version=__version__, docs_url=None, redoc_url=None)
        install(app)
        app.include_router(verify_router(rt))
    except BidprocError as exc:
        return usage_error("bidproc verify --serve", exc)
    print(f"bidproc: verification page on http://{args.host}:{args.port}/verify", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
