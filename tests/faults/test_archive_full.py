"""A full disk under the local archive is an outage (``storage.unavailable``, waited out by the pipeline),
never an unexpected OSError, and never leaves a partial object or a temp file; once space is back, the
same archive stage succeeds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import LocalArchive, open_archive
from bidproc.errors import RETRY_POLICY, BidprocError, Code, Retry
from bidproc.metadata.models import BidRow, DocumentRow, ReceiptRow, TenderRow
from bidproc.pipeline import stages
from bidproc.runtime import Runtime
from tests.archive.bids import archived_bid, local_settings
from tests.faults.services import SmallDisk

UNTIL = datetime(2045, 1, 1, tzinfo=UTC)


@pytest.fixture
def disk(tmp_path: Path, root_mount: None) -> Iterator[SmallDisk]:
    small = SmallDisk(tmp_path / "disk", "2m")
    try:
        yield small
    finally:
        small.close()


def _leftovers(root: Path) -> list[str]:
    """Temp files of the archive (a partial object, a retention record being written)."""
    return sorted(p.name for p in root.rglob("*") if p.name.endswith((".part", ".tmp")))


# 10 bytes fail at the fsync/close; 3 MB fail mid-stream; a key in new directories fails creating them.
@pytest.mark.parametrize(("key", "size"), [("a/tiny", 10), ("a/large", 3_000_000), ("new/dir/deep/object", 10)])
def test_full_disk_is_storage_unavailable_and_leaves_nothing(disk: SmallDisk, key: str, size: int) -> None:
    archive = LocalArchive(disk.path / "archive")
    (disk.path / "archive/a").mkdir()
    disk.fill()
    data = b"x" * size
    with pytest.raises(BidprocError) as raised:
        archive.put(key, (data[i : i + (1 << 20)] for i in range(0, size, 1 << 20)), size, UNTIL)
    assert raised.value.code is Code.STORAGE_UNAVAILABLE and RETRY_POLICY[raised.value.code] is Retry.WAIT
    assert not archive.exists(key) and archive.sha256(key) is None
    assert _leftovers(archive.root) == []
    disk.free()
    if size > 1_000_000:  # 2 MB of tmpfs: the large object cannot fit anyway; a smaller one must
        data, size = data[:1_000_000], 1_000_000
    assert archive.put(key, (data,), size, UNTIL) == hashlib.sha256(data).hexdigest()
    assert archive.exists(key) and _leftovers(archive.root) == []


def test_archive_stage_waits_on_a_full_disk_then_succeeds(disk: SmallDisk, tmp_path: Path) -> None:
    """The pipeline's own archive stage on a full archive disk: a wait code, nothing half-archived; the same
    stage run again once space is back archives the bid whole."""
    rt = Runtime(local_settings(tmp_path, BIDPROC_STORAGE_ARCHIVE_DIR=str(disk.path / "archive")))
    try:
        disk.fill()
        with pytest.raises(BidprocError) as raised:
            archived_bid(rt)  # uploads and submits (data dir elsewhere), then archives onto the full disk
        assert RETRY_POLICY[raised.value.code] is Retry.WAIT
        archive = open_archive(rt.settings)
        assert _leftovers(disk.path / "archive") == []
        disk.free()
        with rt.db.session() as s:
            bid = s.execute(select(BidRow)).scalar_one()
            tender = s.get(TenderRow, bid.tender_id)
            assert tender is not None
            docs = [r.value() for r in s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid.id)).scalars()]
            receipt_row = s.get(ReceiptRow, bid.id)
            assert receipt_row is not None
            receipt = receipt_row.value()
            prefix = bid_prefix(tender.id, bid.id)
        stages.archive_manifest(rt, docs, receipt, prefix, {"intake": {}, "signature": {}})
        manifest = f"{prefix}/evidence/v1/manifest.json"
        assert archive.exists(manifest) and archive.sha256(manifest) is not None
        assert _leftovers(disk.path / "archive") == []
    finally:
        rt.close()
