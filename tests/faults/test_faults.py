"""Fault injection on the production topology (``bidproc serve`` and ``bidproc worker`` processes on Redis,
an S3 endpoint, PostgreSQL and clamd, all of the test's own): bids keep arriving while workers are
SIGKILLed, Redis restarts empty, and the S3 endpoint, clamd and PostgreSQL are stopped; or while the
data directory's disk is full. Nothing with a receipt is lost or finished twice, every stored file
decrypts to what its receipt says, the journal verifies, and an upload that could not be stored is
refused with ``503 storage.unavailable`` before any receipt. About three minutes together.
``bench/faults.py`` runs the same with 500 bids and longer outages."""

from __future__ import annotations

from pathlib import Path

from tests.faults import workload
from tests.faults.chaos import Run, chaos, full_disk


def assert_nothing_lost(run: Run, plans: list[workload.BidPlan]) -> None:
    print("\n".join(run.lines()))
    c = run.checked
    assert [r.error for r in run.results if r.error] == []
    assert all(r.receipt for r in run.results)  # platforms retried what was temporary, and got through
    assert c.receipts == len(run.results)
    assert c.unfinished == [] and run.left == 0
    assert c.finals_per_bid == {1: c.receipts}  # each exactly once
    assert c.failed == 0 and c.finals_without_receipt == 0
    assert c.documents == sum(len(p.files) for p in plans) == c.documents_verified
    assert c.manifest_objects > c.documents and c.manifest_objects_verified == c.manifest_objects
    assert c.journal_ok and c.problems == []
    eicar = sum(any(d == workload.EICAR for _, d in p.files) for p in plans)
    assert c.statuses == {"processed": c.receipts - eicar, **({"quarantined": eicar} if eicar else {})}
    assert not any(code.startswith("500") for r in run.results for code in r.refusals)


def test_workers_killed_redis_restarted_s3_clamd_postgresql_stopped(tmp_path: Path, own_services: None) -> None:
    # 12 s: longer than the S3 client's own retries (about 6 s), so the probe meets the outage
    run = chaos(tmp_path, bids=30, files_per_bid=3, workers=2, window=40, outage=12, pg_outage=4, kills=2,
                drain_seconds=150)
    assert_nothing_lost(run, workload.plan_bids(30, 3, seed=13, hostile_every=12))
    assert sum("SIGKILL" in f for f in run.faults) == 2
    # the upload made while S3 was down: refused as temporary, and the bid holds no file from it; while
    # PostgreSQL was down, a request is answered as an outage too (it was a 500 internal.error)
    assert run.probes == {"503 storage.unavailable": 1, "then files in bid: 0": 1,
                          "new bid: 503 database.unavailable": 1}


def test_full_data_disk_refuses_uploads_and_loses_nothing(tmp_path: Path, own_services: None,
                                                          root_mount: None) -> None:
    run = full_disk(tmp_path, bids=10, files_per_bid=3, window=12, full_seconds=5, drain_seconds=120)
    assert_nothing_lost(run, workload.plan_bids(10, 3, hostile_every=0, max_kb=512))
    assert run.probes == {"503 storage.unavailable": 1, "then files in bid: 0": 1}
    assert sum(r.refusals["503 storage.unavailable"] for r in run.results) > 0  # the platforms met the full disk
