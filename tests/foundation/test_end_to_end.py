"""A bid travels over HTTP, Redis, clamd, PostgreSQL and S3 (moto_server), all real."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from minio import Minio
from sqlalchemy import select

from bidproc.journal.chain import verify
from bidproc.metadata.models import JournalRow, StageRunRow
from tests.foundation.stack import Stack

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def minio_for(stack: Stack) -> Minio:
    s = stack.settings.storage
    return Minio(s.s3_endpoint, access_key=s.s3_access_key, secret_key=s.s3_secret_key, secure=False)


def test_bid_end_to_end_with_receipt_worker_and_s3(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    http = stack.client()
    tender = stack.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME SAS"}).json()
    files = {"offre.txt": b"Notre offre: 42 EUR HT\n" * 100, "annexe.csv": b"poste;prix\nA;1\n",
             "virus.txt": EICAR}
    for name, data in files.items():
        r = http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data)
        assert r.status_code == 201, r.text
        assert r.json() == {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    submitted = http.post(f"/v1/bids/{bid['id']}/submit")
    assert submitted.status_code == 201, submitted.text
    receipt = submitted.json()
    assert receipt["bidder"] == "ACME SAS" and receipt["buyer"] == "Commune de Test"
    assert receipt["consultation"]["reference"] == tender["reference"] and receipt["on_time"] is True
    assert {f["name"]: f["sha256"] for f in receipt["files"]} == {
        n: hashlib.sha256(d).hexdigest() for n, d in files.items()}

    # The receipt's exact bytes, its RFC 3161 token and the TSA chain: openssl alone checks them.
    body = http.get(f"/v1/bids/{bid['id']}/receipt").content
    assert body == submitted.content
    (tmp_path / "receipt.json").write_bytes(body)
    (tmp_path / "receipt.tsr").write_bytes(http.get(f"/v1/bids/{bid['id']}/receipt.tsr").content)
    (tmp_path / "receipt.p7s").write_bytes(http.get(f"/v1/bids/{bid['id']}/receipt.p7s").content)
    (tmp_path / "tsa.pem").write_bytes(http.get("/v1/timestamping/certificates").content)
    (tmp_path / "seal.pem").write_bytes(http.get("/v1/seal/certificates").content)
    ts = subprocess.run(["openssl", "ts", "-verify", "-data", "receipt.json", "-in", "receipt.tsr", "-CAfile",
                         "tsa.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert ts.returncode == 0 and "Verification: OK" in ts.stdout, ts.stderr
    seal = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "receipt.p7s",
                           "-content", "receipt.json", "-CAfile", "seal.pem", "-purpose", "any", "-out", "/dev/null"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert seal.returncode == 0, seal.stderr
    # ... and refuses a receipt changed by one byte.
    (tmp_path / "receipt.json").write_bytes(body.replace(b"ACME", b"ACMF"))
    bad = subprocess.run(["openssl", "ts", "-verify", "-data", "receipt.json", "-in", "receipt.tsr", "-CAfile",
                          "tsa.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0

    status = stack.wait_status(http, bid["id"])
    assert status["status"] == "quarantined"
    verdicts = {f["name"]: f for f in status["files"]}
    assert verdicts["offre.txt"]["verdict"] == "accepted" and verdicts["annexe.csv"]["verdict"] == "accepted"
    assert verdicts["virus.txt"]["verdict"] == "quarantined"
    assert verdicts["virus.txt"]["code"] == "malware.detected"
    assert verdicts["virus.txt"]["detail"]["malware"][0]["signature"].startswith("Eicar-Test-Signature")

    # Everything of the bid is in S3 under tenders/<tender>/bids/<bid>/, the EICAR file kept as evidence.
    client = minio_for(stack)
    prefix = f"tenders/{tender['id']}/bids/{bid['id']}/"
    keys = {o.object_name for o in client.list_objects(stack.settings.storage.s3_bucket, prefix=prefix,
                                                       recursive=True)}
    assert {prefix + "receipt.json", prefix + "receipt.tsr", prefix + "receipt.p7s", prefix + "manifest.json"} <= keys
    # sealed to the tender's opening key (the encryption stage); the service-key copies are gone
    assert len([k for k in keys if k.startswith(prefix + "sealed/files/") and k.endswith(".p7m")]) == 3
    assert not [k for k in keys if k.endswith(".enc")]
    stored_receipt = client.get_object(stack.settings.storage.s3_bucket, prefix + "receipt.json").read()
    assert stored_receipt == body
    manifest = json.loads(client.get_object(stack.settings.storage.s3_bucket, prefix + "manifest.json").read())
    assert {d["name"]: d["verdict"] for d in manifest["documents"]}["virus.txt"] == "quarantined"

    with stack.rt.db.session() as s:
        assert verify(s).ok
        actions = [r.action for r in s.execute(select(JournalRow).where(JournalRow.subject == bid["id"])).scalars()]
    assert actions.count("bid.processed") == 1 and "malware.detected" in actions and "bid.submitted" in actions


def test_files_after_the_malware_are_not_read(stack: Stack) -> None:
    """French rule: a bid with malware is not read; its other files are kept, unread."""
    stack.start_worker()
    http = stack.client()
    tender = stack.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    for name, data in (("a-virus.txt", EICAR), ("b-offre.txt", b"offre"), ("c-annexe.txt", b"annexe")):
        assert http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data).status_code == 201
    assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
    status = stack.wait_status(http, bid["id"])
    assert status["status"] == "quarantined"
    verdicts = {f["name"]: (f["verdict"], f["code"]) for f in status["files"]}
    assert verdicts == {"a-virus.txt": ("quarantined", "malware.detected"),
                        "b-offre.txt": ("quarantined", "bid.quarantined"),
                        "c-annexe.txt": ("quarantined", "bid.quarantined")}
    with stack.rt.db.session() as s:
        run = s.get(StageRunRow, (bid["id"], "signature"))
        assert run is not None and run.result == {"skipped": "malware.detected"}
