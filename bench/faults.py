"""Fault-injection run, longer than tests/faults: bids keep arriving while faults play, then the counts.

    .venv/bin/python bench/faults.py [--bids 500] [--files 3] [--window 300] [--outage 30] [--pg-outage 10]
                                     [--kills 6] [--workers 2] [--disk-bids 50] [--disk-size 300m]

The production topology on services of the run's own (``bidproc serve`` and ``bidproc worker``
processes; redis-server, moto_server behind a relay, PostgreSQL from initdb, clamd from
scripts/clamd.sh; needs root for initdb as postgres and for the tmpfs): SIGKILL random workers, restart
Redis empty, stop the S3 endpoint and clamd for ``--outage`` seconds and PostgreSQL for ``--pg-outage``;
then a second run with the local store on a tmpfs (room for every bid) that is filled while bids arrive. Prints, per
run: receipts, final journal entries per bid (each exactly once), stored files and manifest objects
verified, the journal's check, and what platforms were answered. Exit 1 when something was lost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import closing, section
from tests.faults.chaos import Run, chaos, full_disk


def lost(run: Run) -> bool:
    c = run.checked
    return bool(run.left or c.undrained or c.unfinished or c.problems or not c.journal_ok or c.failed
                or c.finals_without_receipt
                or set(c.finals_per_bid) != {1} or c.documents_verified != c.documents
                or sum(r.receipt for r in run.results) != c.receipts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=int, default=500)
    parser.add_argument("--files", type=int, default=3, help="files per bid")
    parser.add_argument("--window", type=float, default=300, help="seconds over which bids arrive")
    parser.add_argument("--outage", type=float, default=30, help="seconds S3 and clamd are down")
    parser.add_argument("--pg-outage", type=float, default=10, help="seconds PostgreSQL is down")
    parser.add_argument("--kills", type=int, default=6, help="workers SIGKILLed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--disk-bids", type=int, default=50, help="bids of the full-disk run (0: skip it)")
    parser.add_argument("--disk-size", default=None,
                        help="tmpfs of the full-disk run (default: room for every bid's objects, 4x its files)")
    parser.add_argument("--drain", type=float, default=1800, help="seconds to wait for the pipeline to drain")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bidproc-faults-"))
    failed = False
    start = time.monotonic()
    run = chaos(tmp / "chaos", bids=args.bids, files_per_bid=args.files, workers=args.workers, window=args.window,
                outage=args.outage, pg_outage=args.pg_outage, kills=args.kills, drain_seconds=args.drain)
    section("workers killed, Redis restarted, S3/clamd/PostgreSQL stopped", run.lines(), time.monotonic() - start)
    failed |= lost(run)
    if args.disk_bids:
        start = time.monotonic()
        run = full_disk(tmp / "disk", bids=args.disk_bids, files_per_bid=args.files, window=args.window / 5,
                        full_seconds=args.outage, drain_seconds=args.drain,
                        disk_size=args.disk_size or f"{max(20, args.disk_bids * args.files * 4 * 512 // 1024)}m")
        section("data disk full", run.lines(), time.monotonic() - start)
        failed |= lost(run)
    closing("RESULT: " + ("something was lost or broken" if failed else "nothing lost, everything verifies"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
