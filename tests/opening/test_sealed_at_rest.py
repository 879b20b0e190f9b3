"""After the encryption stage the service key opens nothing, and no plaintext is anywhere."""

from __future__ import annotations

import os

import psycopg
import pytest
from minio import Minio

from bidproc.encryption.stream import decrypt_bytes
from bidproc.errors import BidprocError
from bidproc.metadata.models import BidRow, DocumentRow, StageRunRow
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, tender


def test_service_key_opens_nothing_after_the_encryption_stage(stack: Stack) -> None:
    stack.start_worker()
    platform = client(stack, "ville", "platform")
    t = tender(stack, platform)  # the default: a committee of one, its share given once
    assert [s["member"] for s in t["opening"]["shares"]] == ["buyer"]
    secret = os.urandom(3 * (1 << 20) + 12345)
    markers = [secret[i : i + 32] for i in range(0, len(secret) - 32, 1 << 18)]
    text = b"Prix unitaire confidentiel: 1234,56 EUR " * 50
    bid = deposit(platform, t["id"], {"prix.bin": secret, "memoire.txt": text}, submit=False)
    with stack.rt.db.session() as s:
        wrapped = s.get(BidRow, bid).wrapped_key
        assert wrapped is not None
    data_key = stack.rt.service_key.unwrap(wrapped)  # what the service key gave before the stage
    assert platform.post(f"/v1/bids/{bid}/submit").status_code == 201
    status = stack.wait_status(platform, bid)
    assert status["status"] == "processed" and "encryption" in status["stages"], status

    with stack.rt.db.session() as s:
        row = s.get(BidRow, bid)
        assert row is not None and row.wrapped_key is None  # the data key is destroyed
        docs = list(s.query(DocumentRow).filter(DocumentRow.bid_id == bid))
        assert all(d.object_key.endswith(".p7m") and "/sealed/" in d.object_key for d in docs)
        run = s.get(StageRunRow, (bid, "encryption"))
        assert run is not None and run.result is not None and run.result["objects"] >= 2
    destroyed = journal(stack, "bid.data_key.destroyed", bid)
    assert len(destroyed) == 1 and destroyed[0].detail["sealed_objects"] == run.result["objects"]

    def leaks(blob: bytes) -> bool:
        return any(m in blob for m in markers) or b"Prix unitaire confidentiel" in blob

    s3 = stack.settings.storage
    minio = Minio(s3.s3_endpoint, access_key=s3.s3_access_key, secret_key=s3.s3_secret_key, secure=False)
    objects = list(minio.list_objects(s3.s3_bucket, prefix=f"tenders/{t['id']}/bids/{bid}/", recursive=True))
    names = [o.object_name for o in objects]
    assert not [n for n in names if n.endswith(".enc")], names  # no service-key object is left
    assert sum(n.endswith(".p7m") for n in names) == run.result["objects"]
    for name in names:
        blob = minio.get_object(s3.s3_bucket, name).read()
        assert not leaks(blob), name
        # try it: the former data key (recovered with the service key) decrypts nothing that is left
        with pytest.raises(BidprocError):
            decrypt_bytes(data_key, blob, context=name.encode())
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}") as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall():
            for values in conn.execute(f'SELECT * FROM "{table}"'):
                for value in values:
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    assert not leaks(blob), table
                    if isinstance(value, bytes) and len(value) == 40:  # a wrapped key: none opens this bid
                        assert stack.rt.service_key.unwrap(value) != data_key
    for path in (p for p in stack.tmp.rglob("*") if p.is_file()):
        blob = path.read_bytes()
        assert not leaks(blob), path
        with pytest.raises(BidprocError):
            decrypt_bytes(data_key, blob)
