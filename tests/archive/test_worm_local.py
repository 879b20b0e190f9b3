"""The local archive store: same rules as far as a file system allows, and it says it is not WORM."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bidproc.archive.worm import LocalArchive, open_archive
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime
from tests.archive.bids import archived_bid, local_settings

UNTIL = datetime(2045, 1, 1, tzinfo=UTC)


def test_local_archive_refuses_overwrite_and_shorter_retention(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    assert not archive.worm and "NOT WORM" in archive.description
    data = b"evidence"
    digest = hashlib.sha256(data).hexdigest()
    assert archive.put("a/b.txt", (data,), len(data), UNTIL) == digest
    assert archive.put("a/b.txt", (data,), len(data), UNTIL) == digest  # the same again: a no-op
    path = tmp_path / "archive/a/b.txt"
    assert stat.S_IMODE(path.stat().st_mode) & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    for other in (b"evidencE", b"evidence and more", b""):
        with pytest.raises(BidprocError) as refused:
            archive.put("a/b.txt", (other,), len(other), UNTIL)
        assert refused.value.code is Code.STORAGE_IMMUTABLE
    assert path.read_bytes() == data
    for earlier in (UNTIL - timedelta(seconds=1), UNTIL - timedelta(days=9000)):
        with pytest.raises(BidprocError) as shorter:
            archive.extend_retention("a/b.txt", earlier)
        assert shorter.value.code is Code.STORAGE_IMMUTABLE
    archive.extend_retention("a/b.txt", UNTIL + timedelta(days=1))
    assert archive.lock("a/b.txt").retain_until == UNTIL + timedelta(days=1)
    archive.set_legal_hold("a/b.txt", True)
    assert archive.lock("a/b.txt").legal_hold
    # Fewer or more bytes than announced never appear under the key.
    with pytest.raises(BidprocError) as lie:
        archive.put("a/c.txt", (b"other",), 6, UNTIL)
    assert lie.value.code is Code.STORAGE_INTEGRITY and not archive.exists("a/c.txt")
    for bad in ("../x", "a/../x", "/abs", "a/.locks/x", ""):
        with pytest.raises(BidprocError):
            archive.put(bad, (data,), len(data), UNTIL)


def test_package_says_local_is_not_worm_and_hold_cli(tmp_path: Path) -> None:
    rt = Runtime(local_settings(tmp_path))
    bid = archived_bid(rt)
    archive = open_archive(rt.settings)
    with archive.open(f"{bid.prefix}/evidence/v1/manifest.json") as fh:
        manifest = json.loads(fh.read())
    assert manifest["retention"]["mode"] == "none: local directory, NOT WORM"
    assert "NOT WORM" in manifest["store"]
    received = datetime.fromisoformat(manifest["received_at"])
    until = datetime.fromisoformat(manifest["retention"]["until"])
    assert until.year == received.year + 15 and "default" in manifest["retention"]["rule"]
    env = {**os.environ, "BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "BIDPROC_SERVICE_SERVICE_KEY": rt.settings.service.service_key}
    held = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "hold", bid.bid_id, "on"], env=env,
                          cwd=tmp_path, capture_output=True, text=True)
    assert held.returncode == 0, held.stderr
    assert all(archive.lock(k).legal_hold for k in archive.keys(bid.prefix + "/evidence/"))
    keys = list(archive.keys(bid.prefix + "/evidence/"))

    def retention(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "retention", bid.bid_id, *args],
                              env=env, cwd=tmp_path, capture_output=True, text=True)

    # Works contract ending in 2040: 10 years from the end of performance, later than the default.
    works = retention("--works", "--performance-end", "2040-06-30")
    assert works.returncode == 0 and f"{len(keys)} objects extended" in works.stdout, works.stderr
    assert {archive.lock(k).retain_until for k in keys} == {datetime(2050, 6, 30, tzinfo=UTC)}
    # A shorter rule afterwards (5 years from a signature) leaves the longer date: never shortened.
    shorter = retention("--contract-signed", "2027-01-15")
    assert shorter.returncode == 0 and f"0 objects extended, {len(keys)} already locked longer" in shorter.stdout
    assert {archive.lock(k).retain_until for k in keys} == {datetime(2050, 6, 30, tzinfo=UTC)}
