"""Red team: keys someone else added to the archive bucket, at `evidence get` and SEDA export time.

Object Lock stops anyone overwriting or deleting what bidproc archived, not adding new keys under a
package's prefix. A key whose name walks out of the package (``..``), or one no package path can be
(a dot component, an empty one), must neither be written anywhere nor crash the copy half-way: the
retrieval refuses, naming the key (``storage.integrity``), before it writes a thing.
"""

from __future__ import annotations

import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from bidproc.archive import seda
from bidproc.archive.retention import policy_of
from bidproc.archive.retrieve import fetch
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.archive.worm_s3 import S3Archive
from bidproc.errors import BidprocError, Code
from tests.archive.bids import ArchivedBid, archived_bid
from tests.archive.test_worm_s3 import s3_runtime


@pytest.fixture
def s3_bid(tmp_path: Path, s3_endpoint: str) -> ArchivedBid:
    return archived_bid(s3_runtime(tmp_path, s3_endpoint))


ESCAPE = f"escape-{uuid.uuid4().hex[:8]}"
FOREIGN = [
    f"../../../../../../../../../../../../../../../../tmp/{ESCAPE}/owned.txt",
    f"objects/../../../../../../../../../../../../../../../../tmp/{ESCAPE}/owned.txt",
    "objects/.hidden",
    "objects//double-slash",
    "./manifest.json",
]


def _add(bid: ArchivedBid, name: str) -> str:
    archive = open_archive(bid.rt.settings)
    assert isinstance(archive, S3Archive)
    key = f"{bid.prefix}/evidence/v1/{name}"
    # boto3, as anyone with PUT rights might use: the minio SDK refuses '.' and '..' parts, S3 does not.
    s = bid.rt.settings.storage
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{s.s3_endpoint}",
        aws_access_key_id=s.s3_access_key,
        aws_secret_access_key=s.s3_secret_key,
        region_name=s.s3_region,
    )
    client.put_object(Bucket=archive.bucket, Key=key, Body=b"not bidproc's", ChecksumAlgorithm="SHA256")
    assert key in set(archive.keys(f"{bid.prefix}/evidence/v1/")), "the store normalised the key"
    return key


@pytest.mark.parametrize("name", FOREIGN)
@pytest.mark.parametrize("form", ["dir", "zip"])
def test_a_foreign_key_is_refused_before_anything_is_written(
    s3_bid: ArchivedBid, tmp_path: Path, name: str, form: str
) -> None:
    key = _add(s3_bid, name)
    work = tmp_path / "work"
    work.mkdir()
    out = work / ("pkg.zip" if form == "zip" else "pkg")
    with pytest.raises(BidprocError) as refused:
        fetch(open_archive(s3_bid.rt.settings), s3_bid.prefix, out)
    assert refused.value.code is Code.STORAGE_INTEGRITY and key in refused.value.message
    assert not Path(f"/tmp/{ESCAPE}").exists()
    assert not out.exists() or not any(out.iterdir())  # nothing half-copied


def test_a_foreign_key_is_not_exported(s3_bid: ArchivedBid, tmp_path: Path) -> None:
    key = _add(s3_bid, FOREIGN[0])
    archive = open_archive(s3_bid.rt.settings)
    out = tmp_path / "transfer.zip"
    with pytest.raises(BidprocError) as refused:
        seda.export_tender(
            archive,
            {"id": s3_bid.tender_id, "reference": "T-1", "title": "Travaux"},
            {s3_bid.bid_id: s3_bid.prefix},
            out,
            archival=seda.Agency("A"),
            transferring=seda.Agency("B"),
            originating=seda.Agency("C"),
            now=datetime.now(UTC),
            appraisal=seda.AppraisalPolicy(policy_of(None), s3_bid.rt.settings.archive, frozenset()),
        )
    assert refused.value.code is Code.STORAGE_INTEGRITY and key in refused.value.message
    assert not out.exists() or not any(".." in n for n in zipfile.ZipFile(out).namelist())


def test_a_foreign_but_wellformed_key_is_copied_and_named_by_verify(s3_bid: ArchivedBid, tmp_path: Path) -> None:
    """Not refused at retrieval (it is a package path): copied, so that verify names it as added."""
    _add(s3_bid, "objects/files/withdrawal.enc")
    pkg = tmp_path / "pkg"
    fetch(open_archive(s3_bid.rt.settings), s3_bid.prefix, pkg)
    report = verify_package(pkg)
    assert ("objects/files/withdrawal.enc", "not listed in SHA256SUMS (added after sealing)") in report.failures
