"""The opening as a queued job: quorum checked in the request, decryption by a worker, status polled,
the tender's key never in clear in the queue or the database; the archive told of each opened bid."""

from __future__ import annotations

import base64
import os
import signal
import time
from datetime import timedelta
from typing import Any

import psycopg
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bidproc.archive.package import versions
from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import open_archive
from bidproc.desk.opening_job import OpeningPolicy
from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.metadata.models import OpeningRunRow, TenderRow
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, journal, open_tender, tender


def _redis_values(stack: Stack) -> list[bytes]:
    """Every value under the queue's namespace in Redis: messages, ids, the key drop."""
    r = redis.Redis.from_url(stack.settings.queue.redis_url)
    found: list[bytes] = []
    for key in r.scan_iter(match=f"{stack.settings.queue.namespace}*"):
        kind = r.type(key).decode()
        found += [key]
        if kind == "string":
            found.append(r.get(key) or b"")
        elif kind == "hash":
            found += list(r.hgetall(key).values())
        elif kind == "list":
            found += r.lrange(key, 0, -1)
        elif kind == "zset":
            found += r.zrange(key, 0, -1)
        elif kind == "set":
            found += list(r.smembers(key))
    return found


def _database_values(stack: Stack) -> list[bytes]:
    found = []
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}") as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall():
            for values in conn.execute(f'SELECT * FROM "{table}"'):
                found += [v if isinstance(v, bytes) else str(v).encode() for v in values]
    return found


def _forms_of_key(stack: Stack, tender_id: str, share: str) -> list[bytes]:
    """The tender's private key in every form it could be written in clear."""
    with stack.rt.db.session() as s:
        row = s.get(TenderRow, tender_id)
        assert row is not None and row.opening is not None
        private = combine(tender_keys.committee_key(row.opening), [share])
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    return [der, base64.b64encode(der), scalar, scalar.hex().encode(), base64.b64encode(scalar)]


def test_the_opening_is_a_job_and_its_key_is_never_in_clear(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    share = t["opening"]["shares"][0]["share"]
    worker = stack.start_worker()
    bids = {deposit(platform, t["id"], {"offre.txt": f"offre {i}".encode(), "prix.txt": b"1 EUR"}) for i in range(3)}
    for bid in bids:
        assert stack.wait_status(platform, bid)["status"] == "processed"
    os.killpg(worker.pid, signal.SIGTERM)  # no worker for a while: the run will wait, queued
    worker.wait(30)

    assert buyer.get(f"/v1/tenders/{t['id']}/opening").json()["state"] == "none"
    first = next(iter(bids))
    r = buyer.get(f"/v1/bids/{first}/files")  # names may tell content: not before the opening
    assert r.status_code == 409 and r.json()["code"] == "opening.too_early"
    stack.clock.offset = timedelta(hours=1, seconds=1)
    assert buyer.get(f"/v1/bids/{first}/files").json()["code"] == "opening.too_early"  # past, but not opened
    assert len(journal(stack, "document.list.refused", first)) == 2

    # no worker: the run waits, queued; asking again answers the same run (the key is handed over once)
    r1 = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": [share]})
    r2 = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": [share]})
    assert r1.status_code == r2.status_code == 202, r1.text
    assert r1.json()["id"] == r2.json()["id"] and r1.json()["state"] == "queued"
    assert len(journal(stack, "opening.requested", t["id"])) == 1
    # a quorum failure is still answered at once, even while a run waits
    bad = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": []})
    assert bad.status_code == 403 and bad.json()["code"] == "opening.quorum"

    forms = _forms_of_key(stack, t["id"], share)
    stored = _redis_values(stack) + _database_values(stack)
    assert not [v for v in stored for f in forms if f in v]  # nowhere in clear while the job waits
    with stack.rt.db.session() as s:
        run = s.get(OpeningRunRow, r1.json()["id"])
        assert run is not None and run.sealed_key is not None  # half of it, encrypted

    stack.start_worker()
    done = open_tender(buyer, t["id"], [share])  # follows the run already queued
    assert done["id"] == r1.json()["id"] and done["state"] == "done", done
    assert sorted(done["opened"]) == sorted(bids) and done["progress"] == {"done": 3, "total": 3}
    with stack.rt.db.session() as s:
        run = s.get(OpeningRunRow, done["id"])
        assert run is not None and run.sealed_key is None  # both halves are gone
    assert not [k for k in _redis_values(stack) if b"opening-key" in k]
    stored = _redis_values(stack) + _database_values(stack)
    assert not [v for v in stored for f in forms if f in v]

    listed = buyer.get(f"/v1/bids/{first}/files").json()
    assert [(f["name"], f["size"], f["role"], f["verdict"]) for f in listed["files"]] == [
        ("offre.txt", 7, "offer", "accepted"), ("prix.txt", 5, "offer", "accepted")]
    assert platform.get(f"/v1/bids/{first}/files").json()["code"] == "auth.forbidden_role"
    assert len(journal(stack, "document.listed", first)) == 1

    # the archive's hook: a new version of each opened bid's evidence package, once
    archive = open_archive(stack.settings)
    end = time.monotonic() + 60
    while time.monotonic() < end and len(journal(stack, "bid.archived.opened")) < 3:
        time.sleep(0.2)
    assert {e.subject for e in journal(stack, "bid.archived.opened")} == bids, stack.worker_logs()
    assert versions(archive, bid_prefix(t["id"], first)) == {1: True, 2: True}

    # another request after the run is done: a new run, which has nothing left to open
    again = open_tender(buyer, t["id"], [share])
    assert again["id"] != done["id"] and again["state"] == "done" and again["progress"]["total"] == 0
    assert len(journal(stack, "bid.opened")) == 3


def test_a_key_left_unclaimed_expires_and_the_run_says_so(stack: Stack) -> None:
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    share = t["opening"]["shares"][0]["share"]
    stack.pipeline.openings.policy = OpeningPolicy(key_ttl_seconds=1)
    stack.clock.offset = timedelta(hours=1, seconds=1)
    r = buyer.post(f"/v1/tenders/{t['id']}/open", json={"shares": [share]})
    assert r.status_code == 202 and r.json()["state"] == "queued"
    time.sleep(1.5)  # the drop forgets the key; the worker comes too late
    stack.start_worker()
    end = time.monotonic() + 60
    run: dict[str, Any] = {}
    while time.monotonic() < end and run.get("state") != "failed":
        run = buyer.get(f"/v1/tenders/{t['id']}/opening").json()
        time.sleep(0.2)
    assert run["state"] == "failed" and run["errors"][0]["code"] == "opening.interrupted", run
    assert journal(stack, "opening.failed", t["id"])[0].detail["code"] == "opening.interrupted"
    stack.pipeline.openings.policy = OpeningPolicy()
    assert open_tender(buyer, t["id"], [share])["state"] == "done"  # given again, it opens
