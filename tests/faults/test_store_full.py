"""A full disk under the local store is an outage of the store (``storage.unavailable``: 503 at upload,
waited out by the pipeline), never an unexpected error, and never leaves a partial object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bidproc.archive.store import LocalStore
from bidproc.errors import BidprocError, Code
from tests.faults.services import SmallDisk


@pytest.fixture
def full_store(tmp_path: Path, root_mount: None) -> Iterator[LocalStore]:
    disk = SmallDisk(tmp_path / "disk", "2m")
    try:
        store = LocalStore(disk.path / "store")
        disk.fill()
        yield store
    finally:
        disk.close()


# 10 bytes stay in the file's buffer until the final flush; 300 KB fail in the writing thread; 3 MB fail
# mid-stream; a key in a new directory fails creating it.
@pytest.mark.parametrize(("key", "size"), [("a/tiny", 10), ("a/medium", 300_000), ("a/large", 3_000_000),
                                           ("new/dir/deep/object", 10)])
def test_full_disk_is_storage_unavailable_and_leaves_nothing(full_store: LocalStore, key: str, size: int) -> None:
    with pytest.raises(BidprocError) as raised:
        with full_store.open_writer(key) as w:
            for _ in range(0, size, 1 << 20):
                w.write(b"x" * min(size, 1 << 20))
    assert raised.value.code is Code.STORAGE_UNAVAILABLE
    assert not full_store.exists(key)
    assert list((full_store.root / ".incoming").iterdir()) == []
    with pytest.raises(BidprocError) as raised:
        full_store.put_bytes(key, b"y" * size)
    assert raised.value.code is Code.STORAGE_UNAVAILABLE
