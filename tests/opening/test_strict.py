"""Strict mode (``process_at: opening``): sealed from the first byte, processed only after the opening."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from minio import Minio

from bidproc.archive.opened import opening_record
from bidproc.config import ClamdSettings
from bidproc.encryption.stream import decrypt_bytes
from bidproc.errors import BidprocError
from bidproc.metadata.models import BidRow, DocumentRow, StageRunRow
from tests.foundation.stack import Stack
from tests.opening.helpers import certificate, client, deposit, journal, open_tender, tender
from tests.pki import TestPKI
from tests.signature.signing import make_pdf, sign_pdf

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEXT = b"Prix unitaire confidentiel: 1234,56 EUR " * 50


def _strict_tender(stack: Stack, http: httpx.Client, **opening: Any) -> httpx.Response:
    body = {
        "reference": f"S-{uuid.uuid4().hex[:8]}",
        "title": "Voirie",
        "buyer": "Commune",
        "deadline": (stack.clock() + timedelta(hours=1)).isoformat(),
        "process_at": "opening",
    }
    if opening:
        body["opening"] = opening
    return http.post("/v1/tenders", json=body)


def _objects(stack: Stack, prefix: str) -> dict[str, bytes]:
    s3 = stack.settings.storage
    minio = Minio(s3.s3_endpoint, access_key=s3.s3_access_key, secret_key=s3.s3_secret_key, secure=False)
    return {
        o.object_name: minio.get_object(s3.s3_bucket, o.object_name).read()
        for o in minio.list_objects(s3.s3_bucket, prefix=prefix, recursive=True)
    }


def _rows(stack: Stack) -> list[object]:
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}") as conn:
        return [
            v
            for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()
            for values in conn.execute(f'SELECT * FROM "{table}"')
            for v in values
        ]


def _assert_sealed_at_rest(stack: Stack, tender_id: str, bids: list[str], markers: list[bytes]) -> None:
    """Only CMS envelopes in storage; nothing the service key unwraps decrypts any of them; no plaintext
    in any object, row or temporary file."""

    def leaks(blob: bytes) -> bool:
        return any(m in blob for m in markers)

    rows = _rows(stack)
    data_keys = [stack.rt.service_key.unwrap(v) for v in rows if isinstance(v, bytes) and len(v) == 40]
    for bid in bids:
        objects = _objects(stack, f"tenders/{tender_id}/bids/{bid}/")
        files = [k for k in objects if "/sealed/files/" in k]
        assert files and all(k.endswith(".p7m") for k in files), objects.keys()
        assert not [k for k in objects if k.endswith(".enc")], objects.keys()  # no service-key object
        for name, blob in objects.items():
            assert not leaks(blob), name
            for key in data_keys:  # try it: no key the service holds opens anything of the bid
                with pytest.raises(BidprocError):
                    decrypt_bytes(key, blob, context=name.encode())
    for value in rows:
        assert not leaks(value if isinstance(value, bytes) else str(value).encode())
    for path in (p for p in stack.tmp.rglob("*") if p.is_file()):
        assert not leaks(path.read_bytes()), path


def test_strict_needs_a_committee(stack: Stack) -> None:
    platform = client(stack, "ville", "platform")
    _, cert = certificate("ec", "acheteur")
    r = _strict_tender(stack, platform, mode="recipients", certificates=[cert.decode()])
    assert r.status_code == 400 and r.json()["code"] == "request.invalid", r.text
    assert "never holds the private key" in r.json()["message"]
    t = tender(stack, platform)  # a normal tender says how it processes
    assert t["opening"]["process_at"] == "receipt"


def test_strict_bid_is_sealed_from_its_first_byte_and_processed_after_the_opening(
    tmp_path: Path, pki: TestPKI, s3_endpoint: str, clamd_settings: ClamdSettings, postgres_url: str, redis_url: str
) -> None:
    (tmp_path / "root.der").write_bytes(pki.root_der)
    stack = Stack(
        tmp_path, s3_endpoint, clamd_settings, env={"BIDPROC_SIGNATURE_TRUST_ANCHOR_FILES": str(tmp_path / "root.der")}
    )
    try:
        stack.start_worker()
        platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
        created = _strict_tender(stack, platform)
        assert created.status_code == 201, created.text
        t = created.json()
        assert t["opening"]["process_at"] == "opening" and t["opening"]["mode"] == "committee"
        share = t["opening"]["shares"][0]["share"]
        secret = os.urandom(3 * (1 << 20) + 12345)
        files = {
            "ae.pdf": sign_pdf(make_pdf("Acte d'engagement"), pki, level="B-LT"),
            "prix.bin": secret,
            "memoire.txt": TEXT,
        }
        bid = deposit(platform, t["id"], files)
        infected = deposit(platform, t["id"], {"offre.com": EICAR, "lettre.txt": TEXT})
        receipt = json.loads(platform.get(f"/v1/bids/{bid}/receipt").content)
        assert {f["name"]: f["sha256"] for f in receipt["files"]} == {
            n: hashlib.sha256(d).hexdigest() for n, d in files.items()
        }

        # The worker got both bids at submit; a normal bid queued after them is processed, they stay parked.
        control = deposit(platform, tender(stack, platform)["id"], {"a.txt": b"a"})
        assert stack.wait_status(platform, control)["status"] == "processed"
        for b in (bid, infected):
            assert platform.get(f"/v1/bids/{b}").json()["status"] == "sealed"
            with stack.rt.db.session() as s:
                row = s.get(BidRow, b)
                assert row is not None and row.wrapped_key is None and row.opened_at is None
                assert s.query(StageRunRow).filter(StageRunRow.bid_id == b).count() == 0
                assert {d.verdict for d in s.query(DocumentRow).filter(DocumentRow.bid_id == b)} == {"pending"}
        markers = [secret[i : i + 32] for i in range(0, len(secret) - 32, 1 << 18)]
        _assert_sealed_at_rest(stack, t["id"], [bid, infected], [*markers, EICAR[:40], TEXT[:40]])
        assert buyer.get(f"/v1/bids/{bid}/files/prix.bin").json()["code"] == "opening.too_early"

        late = deposit(platform, t["id"], {"tard.txt": TEXT}, submit=False)
        stack.clock.offset = timedelta(hours=1, seconds=1)
        refused = platform.post(f"/v1/bids/{late}/submit")  # a late receipt, then deadline.passed
        assert refused.status_code == 409 and refused.json()["code"] == "deadline.passed", refused.text
        assert stack.wait_status(platform, late)["status"] == "late"
        run = open_tender(buyer, t["id"], [share])
        assert run["state"] == "done" and sorted(run["opened"]) == sorted([bid, infected]), run
        assert run["late"] == [late]
        _assert_sealed_at_rest(stack, t["id"], [late], [TEXT[:40]])  # a late strict bid is never opened
        status = stack.wait_status(platform, bid, timeout=180)
        assert status["status"] == "processed", status
        assert status["signatures"]["ae.pdf"]["indications"] == ["TOTAL_PASSED"], status
        assert stack.wait_status(platform, infected)["status"] == "quarantined"
        assert journal(stack, "malware.detected", infected)

        for name, data in files.items():  # byte-identical, read through the buyer's normal path
            r = buyer.get(f"/v1/bids/{bid}/files/{name}")
            assert r.status_code == 200 and r.content == data, name
        report = buyer.get(f"/v1/bids/{bid}/reports/ae.pdf.json")
        assert report.status_code == 200 and json.loads(report.content)["signatures"][0]["indication"] == (
            "TOTAL_PASSED"
        )
        listed = buyer.get(f"/v1/bids/{bid}/files").json()["files"]
        assert {f["name"]: f["sha256"] for f in listed} == {f["name"]: f["sha256"] for f in receipt["files"]}
        verdicts = {f["name"]: f["verdict"] for f in listed}  # intake ran on the opened copy
        assert verdicts["ae.pdf"] == verdicts["memoire.txt"] == "accepted" and "pending" not in verdicts.values()
        assert buyer.get(f"/v1/bids/{infected}/files/lettre.txt").json()["code"] == "opening.too_early"
        envelope = buyer.get(f"/v1/bids/{bid}/sealed/memoire.txt")  # as received, for opening offline
        assert envelope.status_code == 200 and TEXT[:40] not in envelope.content
        with stack.rt.db.session() as s:
            sealing = s.get(StageRunRow, (bid, "encryption"))
            assert sealing is not None and sealing.result is not None and "strict" in sealing.result["skipped"]
        assert journal(stack, "bid.opened", bid)[0].detail["strict"] is True
        end = time.monotonic() + 90  # the post-opening evidence version waits for the pipeline's first one
        while time.monotonic() < end and not journal(stack, "bid.archived.opened", bid):
            time.sleep(0.5)
        assert journal(stack, "bid.archived.opened", bid), stack.worker_logs()
        record = json.loads(opening_record(stack.rt, bid))
        assert {d["name"]: d["sha256"] for d in record["documents"]} == {
            f["name"]: f["sha256"] for f in receipt["files"]
        }
        prefix = f"tenders/{t['id']}/bids/{bid}/"
        assert all(
            stack.rt.store.exists(prefix + d[k][len("objects/") :])
            for d in record["documents"]
            for k in ("sealed", "opened")
        )
    finally:
        stack.close()
