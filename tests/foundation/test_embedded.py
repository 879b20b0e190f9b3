"""The embedded defaults (SQLite, local directory, in-process queue) and the pieces under them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bidproc.archive.store import LocalStore, S3Store
from bidproc.config import ClamdSettings, load_settings
from bidproc.encryption.stream import BytesSource, DecryptingReader, decrypt_bytes, encrypt_bytes
from bidproc.errors import BidprocError, Code
from tests.services import ROOT


def test_demo_runs_end_to_end_on_embedded_defaults(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    env = {**os.environ, "BIDPROC_CLAMD_PORT": str(clamd_settings.port), "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "bidproc.cli", "demo", "--data-dir", str(tmp_path / "data")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verification: OK" in proc.stdout
    assert "eicar.com    quarantined  malware.detected (Eicar-Test-Signature" in proc.stdout
    assert "bid status: quarantined" in proc.stdout
    assert (tmp_path / "data" / "bidproc.db").exists()
    assert any((tmp_path / "data" / "objects" / "tenders").rglob("manifest.json"))


def test_config_file_env_and_masking(tmp_path: Path) -> None:
    path = tmp_path / "bidproc.toml"
    path.write_text('[storage]\nbackend = "s3"\ns3_secret_key = "file-secret"\n[queue]\nlease_seconds = 7\n')
    s = load_settings(path, env={"BIDPROC_QUEUE_LEASE_SECONDS": "9", "BIDPROC_DATABASE_URL": "postgresql://u:pw@h/d"})
    assert s.storage.backend == "s3" and s.queue.lease_seconds == 9
    shown = json.dumps(s.masked())
    assert "file-secret" not in shown and "pw@" not in shown and "********" in shown
    with pytest.raises(BidprocError) as err:
        load_settings(path, env={"BIDPROC_QUEUE_LEASE_SECONDS": "soon"})
    assert err.value.code is Code.CONFIG_INVALID
    path.write_text("[storage]\nbakend = 's3'\n")
    with pytest.raises(BidprocError, match="unknown settings"):
        load_settings(path, env={})
    out = subprocess.run([sys.executable, "-m", "bidproc.cli", "config", "show"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "BIDPROC_STORAGE_S3_SECRET_KEY": "env-secret"})
    assert out.returncode == 0 and "env-secret" not in out.stdout and '"s3_secret_key": "********"' in out.stdout


def test_chunked_encryption_round_trip_seek_and_tamper() -> None:
    key = os.urandom(32)
    for size in (0, 1, 4095, 4096, 4097, 3 * 4096, 50_000):
        data = os.urandom(size)
        blob = encrypt_bytes(key, data, chunk_size=4096)
        assert decrypt_bytes(key, blob) == data
        reader = DecryptingReader(key, BytesSource(blob))
        assert reader.length == size
        if size > 10:
            reader.seek(size - 7)
            assert reader.read() == data[-7:]
            reader.seek(3, io.SEEK_SET)
            assert reader.read(5000) == data[3:5003]
    blob = bytearray(encrypt_bytes(key, os.urandom(20_000), chunk_size=4096))
    for bad in (bytes(blob[: -(4096 + 16)]), bytes(blob[:-1]), bytes(blob[:100]) + b"\0" + bytes(blob[101:])):
        with pytest.raises(BidprocError) as err:
            decrypt_bytes(key, bad)
        assert err.value.code is Code.STORAGE_INTEGRITY
    with pytest.raises(BidprocError):
        decrypt_bytes(os.urandom(32), bytes(blob))
    # bound to where it is stored: the same ciphertext under another object key does not decrypt
    bound = encrypt_bytes(key, b"offre", context=b"tenders/t/bids/b/files/1.enc")
    assert decrypt_bytes(key, bound, context=b"tenders/t/bids/b/files/1.enc") == b"offre"
    with pytest.raises(BidprocError):
        decrypt_bytes(key, bound, context=b"tenders/t/bids/b/files/2.enc")
    # a header whose (unauthenticated) chunk size is absurd is refused before it is used
    forged = bytearray(bound)
    forged[8:12] = b"\x00\x00\x00\x00"
    with pytest.raises(BidprocError):
        decrypt_bytes(key, bytes(forged), context=b"tenders/t/bids/b/files/1.enc")


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_object_store_is_atomic(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "s3":
        store: LocalStore | S3Store = S3Store(request.getfixturevalue("s3_endpoint"), "k", "s", "atomic-test")
    else:
        store = LocalStore(tmp_path / "objects")
    data = os.urandom(20 << 20)  # over one S3 multipart part
    with store.open_writer("a/b/big.bin") as w:
        for i in range(0, len(data), 1 << 20):
            w.write(data[i : i + (1 << 20)])
    assert store.size("a/b/big.bin") == len(data)
    assert store.read_at("a/b/big.bin", 12345, 100) == data[12345:12445]
    with pytest.raises(RuntimeError), store.open_writer("a/b/broken.bin") as w:
        w.write(b"half")
        raise RuntimeError("client went away")
    assert not store.exists("a/b/broken.bin")
    assert list(store.keys("a/")) == ["a/b/big.bin"]
    with pytest.raises(BidprocError) as err:
        store.get_bytes("a/missing")
    assert err.value.code is Code.STORAGE_NOT_FOUND
    with pytest.raises(BidprocError):
        store.put_bytes("../escape", b"x")


def test_sqlite_denied_access_is_quick_and_journalled(tmp_path: Path) -> None:
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from bidproc.config import replace
    from bidproc.desk.deposit import Desk
    from bidproc.desk.tenants import create_api_key
    from bidproc.metadata.models import JournalRow, TenantRow
    from bidproc.runtime import Runtime

    rt = Runtime(replace(load_settings(env={}), service={"data_dir": str(tmp_path)}))
    rt.migrate()
    # a well-formed id nobody has: ids that are not our UUIDs are refused before the database, unjournalled
    no_such_bid = "00000000-0000-4000-8000-000000000000"
    try:
        desk = Desk(rt)
        for name in ("tenant-a", "tenant-b"):
            create_api_key(rt.db, name, rt.clock())
        with rt.db.session() as s:
            ids = {name: id_ for name, id_ in s.execute(select(TenantRow.name, TenantRow.id))}
        a, b = ids["tenant-a"], ids["tenant-b"]
        tender = desk.create_tender(a, "R-1", "t", "b", datetime.now(UTC) + timedelta(hours=1))
        bid = desk.create_bid(a, tender.id, "ACME")
        start = time.monotonic()
        for call in (lambda: desk.status(b, bid.id), lambda: desk.submit(b, bid.id),
                     lambda: desk.create_bid(b, tender.id, "Intrus"), lambda: desk.status(a, no_such_bid)):
            with pytest.raises(BidprocError) as err:
                call()
            assert err.value.code in {Code.BID_NOT_FOUND, Code.TENDER_NOT_FOUND}
        assert time.monotonic() - start < 5
        with rt.db.session() as s:
            denied = s.execute(select(JournalRow).where(JournalRow.action == "access.denied")).scalars().all()
        assert [(d.actor, d.subject) for d in denied] == [(b, bid.id), (b, bid.id), (b, tender.id), (a, no_such_bid)]
    finally:
        rt.close()


def test_sqlite_transactions_of_one_process_queue_and_a_long_wait_is_an_outage(tmp_path: Path) -> None:
    """Threads of one process take SQLite's single writer in turn (a lock, not SQLite's sleeping busy
    handler); one that waits longer than the busy bound gets ``database.unavailable``, never a hang; a
    transaction that only reads runs beside the writer."""
    import threading

    from sqlalchemy import text

    from bidproc.metadata.db import Database

    db = Database(f"sqlite:///{tmp_path}/one-writer.db")
    holding, release, order = threading.Event(), threading.Event(), list[str]()

    def long_transaction() -> None:
        with db.session() as s:
            s.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)
            order.append("first")

    def queued() -> None:
        with db.session() as s:
            s.execute(text("SELECT 1"))
            order.append("second")

    first = threading.Thread(target=long_transaction)
    first.start()
    assert holding.wait(10)
    with db.reading() as s:  # a reader goes beside the writer (WAL), it does not queue behind it
        assert s.execute(text("SELECT 1")).scalar() == 1
    db.busy_seconds = 0.2
    with pytest.raises(BidprocError) as err, db.session() as s:
        s.execute(text("SELECT 1"))
    assert err.value.code is Code.DATABASE_UNAVAILABLE
    db.busy_seconds = 30
    second = threading.Thread(target=queued)
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert order == ["first", "second"]
    db.dispose()
