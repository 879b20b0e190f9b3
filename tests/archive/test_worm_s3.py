"""The archive store on S3 (moto_server): Object Lock COMPLIANCE on every package object, round trip,
and what WORM means: no delete, no overwrite, no shorter retention."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from bidproc.archive import worm_s3
from bidproc.archive.evidence import archive_bid, record_stamper
from bidproc.archive.renewal import renew_all
from bidproc.archive.retrieve import fetch
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.archive.worm_s3 import S3Archive
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime
from tests.archive.bids import ArchivedBid, archived_bid, local_settings
from tests.archive.test_package import run_readme


def s3_runtime(tmp: Path, endpoint: str) -> Runtime:
    return Runtime(local_settings(tmp, BIDPROC_STORAGE_BACKEND="s3", BIDPROC_STORAGE_S3_ENDPOINT=endpoint,
                                  BIDPROC_STORAGE_S3_SECRET_KEY="moto-accepts-any",
                                  BIDPROC_STORAGE_S3_BUCKET=f"work-{uuid.uuid4().hex[:12]}",
                                  BIDPROC_STORAGE_ARCHIVE_BUCKET=f"archive-{uuid.uuid4().hex[:12]}"))


def raw_client(rt: Runtime) -> Minio:
    s = rt.settings.storage
    return Minio(s.s3_endpoint, access_key=s.s3_access_key, secret_key=s.s3_secret_key, secure=False,
                 region=s.s3_region)


@pytest.fixture
def s3_bid(tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ArchivedBid:
    # A 6 MB original goes through the multipart path (retention set on the version after the upload).
    monkeypatch.setattr(worm_s3, "SINGLE_PUT_MAX", 5 << 20)
    rt = s3_runtime(tmp_path, s3_endpoint)
    return archived_bid(rt, {"offre.pdf": b"%PDF-1.7 " + bytes(range(256)) * 24_000, "annexe.csv": b"a;b\n"})


def test_round_trip_every_object_locked_until_the_retention_date(s3_bid: ArchivedBid, tmp_path: Path) -> None:
    rt = s3_bid.rt
    archive = open_archive(rt.settings)
    assert isinstance(archive, S3Archive) and archive.worm
    client = raw_client(rt)
    assert client.get_bucket_versioning(archive.bucket).status == "Enabled"
    assert client.get_object_lock_config(archive.bucket) is not None
    pkg = tmp_path / "pkg"
    names = fetch(archive, s3_bid.prefix, pkg)
    manifest = json.loads((pkg / "manifest.json").read_text())
    until = datetime.fromisoformat(manifest["retention"]["until"])
    assert manifest["retention"]["mode"] == "COMPLIANCE" and until > rt.clock() + timedelta(days=365 * 14)
    assert any(o["size"] > 5 << 20 for o in manifest["objects"])  # the multipart path was taken
    for name in names:
        lock = archive.lock(f"{s3_bid.prefix}/evidence/v1/{name}")
        assert lock.mode == "COMPLIANCE" and lock.retain_until == until, name
    assert verify_package(pkg).ok and run_readme(pkg) == [0, 0, 0]
    # Tampering with the retrieved copy: named.
    big = max((p for p in (pkg / "objects/files").iterdir()), key=lambda p: p.stat().st_size)
    data = bytearray(big.read_bytes())
    data[-1] ^= 0x80
    big.chmod(0o644)
    big.write_bytes(bytes(data))
    (pkg / "objects/receipt.p7s").unlink()
    failures = verify_package(pkg).failures
    assert (f"objects/files/{big.name}", "SHA-256 differs from SHA256SUMS (altered)") in failures
    assert ("objects/receipt.p7s", "listed in SHA256SUMS but missing from the package") in failures
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=pkg, capture_output=True).returncode == 1


def test_locked_versions_cannot_be_deleted_or_overwritten(s3_bid: ArchivedBid) -> None:
    """Only this test tries to delete: bidproc's archive store has no delete at all."""
    rt = s3_bid.rt
    archive = open_archive(rt.settings)
    assert isinstance(archive, S3Archive) and not hasattr(archive, "delete")
    client = raw_client(rt)
    key = f"{s3_bid.prefix}/evidence/v1/manifest.json"
    original = client.get_object(archive.bucket, key).read()
    version = client.stat_object(archive.bucket, key).version_id
    with pytest.raises(S3Error) as refused:
        client.remove_object(archive.bucket, key, version_id=version)
    assert refused.value.code == "AccessDenied"
    # An overwrite by someone else only adds a version: the locked one is still there, byte for byte.
    client.put_object(archive.bucket, key, io.BytesIO(b"{}"), 2)
    assert client.get_object(archive.bucket, key, version_id=version).read() == original
    with pytest.raises(S3Error):
        client.remove_object(archive.bucket, key, version_id=version)
    # bidproc itself refuses other bytes under an archived key, and a shorter retention.
    sums_key = f"{s3_bid.prefix}/evidence/v1/SHA256SUMS"
    with pytest.raises(BidprocError) as immutable:
        archive.put(sums_key, (b"x",), 1, datetime.fromisoformat("2040-01-01T00:00:00+00:00"))
    assert immutable.value.code is Code.STORAGE_IMMUTABLE
    # The large original went up in one streamed pass (no digest in its metadata): compared by reading back.
    big_key = max(archive.keys(f"{s3_bid.prefix}/evidence/v1/objects/files/"),
                  key=lambda k: int(client.stat_object(archive.bucket, k).size or 0))
    big = client.get_object(archive.bucket, big_key).read()
    until = archive.lock(big_key).retain_until
    assert until is not None
    assert archive.put(big_key, (big[:1000], big[1000:]), len(big), until) == hashlib.sha256(big).hexdigest()
    with pytest.raises(BidprocError) as other_big:
        archive.put(big_key, (big[:-1] + bytes([big[-1] ^ 1]),), len(big), until)
    assert other_big.value.code is Code.STORAGE_IMMUTABLE
    current = archive.lock(sums_key).retain_until
    assert current is not None
    for earlier in (current - timedelta(seconds=1), current - timedelta(days=3650)):
        with pytest.raises(BidprocError) as shorter:
            archive.extend_retention(sums_key, earlier)
        assert shorter.value.code is Code.STORAGE_IMMUTABLE
    assert archive.lock(sums_key).retain_until == current
    archive.extend_retention(sums_key, current + timedelta(days=1))
    assert archive.lock(sums_key).retain_until == current + timedelta(days=1)


def test_archiving_twice_adds_no_version_and_legal_hold(s3_bid: ArchivedBid) -> None:
    rt = s3_bid.rt
    archive = open_archive(rt.settings)
    assert isinstance(archive, S3Archive)
    client = raw_client(rt)

    def object_versions() -> list[tuple[str, str]]:
        return sorted((str(o.object_name), str(o.version_id)) for o in client.list_objects(
            archive.bucket, prefix=s3_bid.prefix + "/", recursive=True, include_version=True))

    before = object_versions()
    archive_bid(rt, s3_bid.tender_id, s3_bid.bid_id, rt.store.get_bytes(s3_bid.prefix + "/receipt.json"))
    assert object_versions() == before
    key = f"{s3_bid.prefix}/evidence/v1/SHA256SUMS.tsr"
    assert not archive.lock(key).legal_hold
    archive.set_legal_hold(key, True)
    assert archive.lock(key).legal_hold


def test_evidence_records_on_s3(s3_bid: ArchivedBid, tmp_path: Path) -> None:
    rt = s3_bid.rt
    archive = open_archive(rt.settings)
    summary = renew_all(archive, record_stamper(rt), rt.clock(), timedelta(days=365))
    assert summary.created == [f"{s3_bid.prefix}/evidence/v1/"]
    record_key = f"{s3_bid.prefix}/evidence/records/v1/0001.ers"
    lock = archive.lock(record_key)
    assert lock.mode == "COMPLIANCE" and lock.retain_until == archive.lock(f"{s3_bid.prefix}/evidence/v1/SHA256SUMS"
                                                                           ).retain_until
    pkg = tmp_path / "pkg.zip"
    fetch(archive, s3_bid.prefix, pkg)
    report = verify_package(pkg)
    assert report.ok and any("1 archive timestamps" in n for n in report.notes), report.failures


def test_a_bucket_without_object_lock_is_refused(s3_endpoint: str) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    Minio(s3_endpoint, access_key="a", secret_key="b", secure=False, region="us-east-1").make_bucket(bucket)
    with pytest.raises(BidprocError) as refused:
        S3Archive(s3_endpoint, "a", "b", bucket)
    assert refused.value.code is Code.CONFIG_INVALID
