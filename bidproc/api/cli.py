"""``bidproc serve``: the HTTP API (with in-process workers when the queue is embedded)."""

from __future__ import annotations

import argparse

from bidproc.cli import Exit, command


@command("bidproc serve")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc serve", description="Run the HTTP API.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    from bidproc.ops import serve, settings_from, settings_options

    args = settings_options(parser).parse_args(argv)
    settings = settings_from(args)
    serve(
        settings,
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        workers=settings.queue.backend == "embedded",
    )
    return Exit.OK
