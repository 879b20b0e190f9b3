"""Version 2 after the opening: a real opening on the stack, then the queued job on the Redis broker."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bidproc.archive import opened
from bidproc.archive.package import versions
from bidproc.archive.retrieve import fetch
from bidproc.archive.store import bid_prefix
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import LocalArchive, open_archive
from bidproc.config import ClamdSettings
from bidproc.errors import BidprocError, Code
from tests.foundation.stack import Stack, stack_fixture
from tests.opening.helpers import client, deposit, open_tender, tender
from tests.services import ROOT


@pytest.fixture
def stack(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings, redis_url: str,
          postgres_url: str) -> Iterator[Stack]:
    yield from stack_fixture(tmp_path, s3_endpoint, clamd_settings, redis_url, postgres_url)


def _wait_complete(stack: Stack, prefix: str, version: int, timeout: float = 90) -> None:
    archive = open_archive(stack.settings)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if versions(archive, prefix).get(version):
            return
        time.sleep(0.3)
    raise AssertionError(f"no complete v{version} of {prefix} after {timeout}s\n{stack.worker_logs()}")


def test_the_opened_bid_gets_a_second_version_with_its_hashes_and_the_opening_record(
        stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    files = {"offre.pdf": b"%PDF-1.4\n% offre\n", "annexe.txt": b"prix: 42\n"}
    bid = deposit(platform, t["id"], files)
    other = deposit(platform, t["id"], {"offre.txt": b"une autre offre\n"})
    assert stack.wait_status(platform, bid)["status"] == "processed"
    assert stack.wait_status(platform, other)["status"] == "processed"
    prefix = bid_prefix(t["id"], bid)
    with pytest.raises(BidprocError) as not_yet:  # processed and archived, but not opened
        opened.archive_opened_bid(stack.rt, bid)
    assert not_yet.value.code is Code.OPENING_TOO_EARLY
    with pytest.raises(BidprocError) as pending:  # no first version (here: another, empty archive)
        opened.archive_opened_bid(stack.rt, bid, archive=LocalArchive(tmp_path / "empty"))
    assert pending.value.code is Code.EVIDENCE_PENDING

    stack.clock.offset = timedelta(hours=1, seconds=1)
    run = open_tender(buyer, t["id"], [t["opening"]["shares"][0]["share"]])  # the queued opening job
    assert run["state"] == "done" and sorted(run["opened"]) == sorted([bid, other]), run
    _wait_complete(stack, prefix, 2)  # queued by the opening job's hook, run by the worker on Redis

    pkg = tmp_path / "v2"
    fetch(open_archive(stack.settings), prefix, pkg, version=2)
    report = verify_package(pkg)
    assert report.ok, report.failures
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["previous"]["version"] == 1
    assert manifest["opening"]["record"] == opened.RECORD
    record = json.loads((pkg / opened.RECORD).read_text())
    assert {d["name"]: d["sha256"] for d in record["documents"]} == {
        n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    roles = {o["path"]: o["role"] for o in manifest["objects"]}
    assert roles[opened.RECORD] == "opening-record"
    for doc in record["documents"]:  # both the sealed envelope and its opened form are in the package
        assert roles[doc["sealed"]] == "sealed-original" and roles[doc["opened"]] == "opened-document"
    assert [e["action"] for e in record["journal"]] == ["bid.opened", "tender.opened"]
    journal = json.loads((pkg / "objects" / "journal.json").read_text())
    assert "bid.opened" in [e["action"] for e in journal["entries"]]

    # v1 is untouched and still verifies; the job again (a redelivery) adds nothing.
    v1 = tmp_path / "v1"
    fetch(open_archive(stack.settings), prefix, v1, version=1)
    assert verify_package(v1).ok and not (v1 / opened.RECORD).exists()
    assert opened.archive_opened_bid(stack.rt, bid) is None
    opened.enqueue(stack.pipeline.broker, bid)
    time.sleep(3)
    assert sorted(versions(open_archive(stack.settings), prefix)) == [1, 2]

    # Both opened bids got their version from the opening's hook: the daily `bidproc evidence renew`
    # (which sweeps opened bids still without one, e.g. a lost message) has nothing left to add.
    _wait_complete(stack, bid_prefix(t["id"], other), 2)
    renew = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "renew"], env={**os.environ, **stack.env},
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert renew.returncode == 0, renew.stdout + renew.stderr
    assert json.loads(renew.stdout)["opened"] == []
    assert versions(open_archive(stack.settings), bid_prefix(t["id"], other)) == {1: True, 2: True}
    assert opened.sweep_opened(stack.rt) == []
