"""``bidproc worker``: queue workers and the reconciler, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from bidproc.cli import Exit, command, usage_error
from bidproc.errors import BidprocError


@command("bidproc worker")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc worker", description="Run queue workers.")
    parser.add_argument("--threads", type=int, help="worker threads (default: queue.worker_threads)")
    from bidproc.ops import settings_from, settings_options

    args = settings_options(parser).parse_args(argv)
    from bidproc.config import replace
    from bidproc.logs import configure as configure_logging
    from bidproc.pipeline.queue import Pipeline
    from bidproc.runtime import Runtime

    settings = settings_from(args)
    configure_logging(settings.service.log_format)
    if args.threads:
        settings = replace(settings, queue={"worker_threads": args.threads})
    if settings.queue.backend == "embedded":
        return usage_error("bidproc worker", "queue.backend is 'embedded' (in-process); use `bidproc up`, or "
                           "set BIDPROC_QUEUE_BACKEND=redis for separate workers")
    rt = Runtime(settings)
    rt.migrate()
    try:
        rt.scanner.ping()
    except BidprocError as exc:  # bids wait (scan.unavailable, retried) until clamd answers
        logging.getLogger("bidproc").warning("%s; bids will wait for it", exc)
    pipeline = Pipeline(rt)
    pipeline.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("bidproc").info("worker %s ready", pipeline.worker_id)
    stop.wait()
    pipeline.stop()
    rt.close()
    return Exit.OK
