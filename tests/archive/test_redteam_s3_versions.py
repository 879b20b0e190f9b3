"""Red team: new object versions and delete markers over an archived package (S3 Object Lock, moto_server).

COMPLIANCE retention protects each *version*: nobody deletes or changes the one bidproc wrote. But
anyone allowed to PUT may add a newer version under the same key, and a DELETE without a version id
only adds a delete marker; a plain GET (and a plain listing) then shows the newcomer. The archive
must keep reading what it locked: the first version of each key.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from bidproc.archive.evidence import archive_bid
from bidproc.archive.package import version_prefix
from bidproc.archive.retrieve import fetch
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.archive.worm_s3 import S3Archive
from tests.archive.bids import ArchivedBid, archived_bid
from tests.archive.test_worm_s3 import raw_client, s3_runtime


@pytest.fixture
def two_versions(tmp_path: Path, s3_endpoint: str) -> tuple[ArchivedBid, S3Archive]:
    bid = archived_bid(s3_runtime(tmp_path, s3_endpoint))
    rt = bid.rt
    rt.store.put_bytes(bid.prefix + "/opening/record.json", b'{"opened": true}')
    written = archive_bid(
        rt, bid.tender_id, bid.bid_id, rt.store.get_bytes(bid.prefix + "/receipt.json"), new_version=True
    )
    assert written.version == 2
    archive = open_archive(rt.settings)
    assert isinstance(archive, S3Archive)
    return bid, archive


def _files(archive: S3Archive, prefix: str) -> dict[str, bytes]:
    out = {}
    for key in archive.keys(prefix):
        with archive.open(key) as fh:
            out[key[len(prefix) :]] = fh.read()
    return out


def test_a_replayed_version_over_the_latest_one_is_not_what_get_returns(
    two_versions: tuple[ArchivedBid, S3Archive], tmp_path: Path
) -> None:
    bid, archive = two_versions
    v1, v2 = version_prefix(bid.prefix, 1), version_prefix(bid.prefix, 2)
    old, new = _files(archive, v1), _files(archive, v2)
    client = raw_client(bid.rt)
    # Make v2 show v1's package (the opened documents gone): new versions for the shared names,
    # delete markers for the others. Nothing locked is touched; every call is allowed by Object Lock.
    for name in new:
        if name in old:
            client.put_object(archive.bucket, v2 + name, io.BytesIO(old[name]), len(old[name]))
        else:
            client.remove_object(archive.bucket, v2 + name)
    pkg = tmp_path / "latest"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)  # a fresh store: nothing remembered from before
    assert json.loads((pkg / "manifest.json").read_bytes())["version"] == 2
    assert (pkg / "objects/opening/record.json").read_bytes() == b'{"opened": true}'
    assert verify_package(pkg).ok


def test_a_newer_version_of_one_file_does_not_replace_the_archived_one(
    two_versions: tuple[ArchivedBid, S3Archive], tmp_path: Path
) -> None:
    bid, archive = two_versions
    key = version_prefix(bid.prefix, 1) + "objects/receipt.json"
    with archive.open(key) as fh:
        genuine = fh.read()
    raw_client(bid.rt).put_object(archive.bucket, key, io.BytesIO(b'{"bidder": "EVIL"}'), 18)
    raw_client(bid.rt).remove_object(archive.bucket, version_prefix(bid.prefix, 1) + "SHA256SUMS.tsr")
    pkg = tmp_path / "v1"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg, version=1)
    assert (pkg / "objects/receipt.json").read_bytes() == genuine
    assert verify_package(pkg).ok


def test_retention_is_extended_on_the_locked_version(two_versions: tuple[ArchivedBid, S3Archive]) -> None:
    bid, archive = two_versions
    key = version_prefix(bid.prefix, 1) + "SHA256SUMS"
    client = raw_client(bid.rt)
    first = client.stat_object(archive.bucket, key).version_id
    before = archive.lock(key).retain_until
    assert before is not None
    client.put_object(archive.bucket, key, io.BytesIO(b"x"), 1)  # a newer, unlocked version
    open_archive(bid.rt.settings).extend_retention(key, before + timedelta(days=30))
    stat = client.stat_object(archive.bucket, key, version_id=first)
    until = (stat.metadata or {}).get("x-amz-object-lock-retain-until-date")
    assert until is not None and until.startswith((before + timedelta(days=30)).date().isoformat()), until
