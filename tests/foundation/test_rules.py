"""Annex IV rules on the real stack: no plaintext at rest, deadlines, tenants, the journal."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import psycopg
from minio import Minio
from sqlalchemy import select

from bidproc.journal.chain import verify
from bidproc.metadata.models import DocumentRow, JournalRow
from tests.foundation.stack import Stack
from tests.services import ROOT


def test_no_plaintext_at_rest(stack: Stack) -> None:
    stack.start_worker()
    http = stack.client()
    tender = stack.new_tender(http)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Secret SARL"}).json()
    # Random content, larger than one encryption chunk, so any leak of any chunk shows.
    secret = os.urandom(3 * (1 << 20) + 12345)
    markers = [secret[i : i + 32] for i in range(0, len(secret) - 32, 1 << 18)]
    assert http.put(f"/v1/bids/{bid['id']}/files/prix.bin", content=secret).status_code == 201
    assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
    stack.wait_status(http, bid["id"])

    def leaks(blob: bytes) -> bool:
        return any(m in blob for m in markers)

    s = stack.settings.storage
    client = Minio(s.s3_endpoint, access_key=s.s3_access_key, secret_key=s.s3_secret_key, secure=False)
    objects = list(client.list_objects(s.s3_bucket, recursive=True))
    assert objects
    for obj in objects:
        assert not leaks(client.get_object(s.s3_bucket, obj.object_name).read()), obj.object_name
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}") as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    blob = value if isinstance(value, bytes) else str(value).encode()
                    assert not leaks(blob), table
    files = [p for p in stack.tmp.rglob("*") if p.is_file()]
    assert any(p.is_relative_to(stack.tmp / "data") for p in files)
    for path in files:
        assert not leaks(path.read_bytes()), path


def test_late_submission_is_refused_and_kept(stack: Stack) -> None:
    http = stack.client()
    tender = stack.new_tender(http, hours=1)
    bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Tardif SA"}).json()
    assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"trop tard").status_code == 201
    stack.clock.offset = timedelta(hours=1, seconds=1)  # the upload ends one second after the deadline
    r = http.post(f"/v1/bids/{bid['id']}/submit")
    assert r.status_code == 409
    assert r.json()["code"] == "deadline.passed" and r.json()["status"] == "late"
    assert r.json()["receipt"]["on_time"] is False
    status = http.get(f"/v1/bids/{bid['id']}").json()
    assert status["status"] == "late" and status["late"] is True
    with stack.rt.db.session() as s:
        doc = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid["id"])).scalar_one()
    assert stack.rt.store.exists(doc.object_key)  # kept, never silently dropped
    # a late bid cannot be re-submitted or completed
    again = http.post(f"/v1/bids/{bid['id']}/submit")
    assert again.status_code == 409 and again.json()["code"] == "bid.already_submitted"
    assert http.put(f"/v1/bids/{bid['id']}/files/autre.txt", content=b"x").json()["code"] == "bid.already_submitted"


def test_tenants_are_isolated_and_attempts_journalled(stack: Stack) -> None:
    a, b = stack.client("platform-a"), stack.client("platform-b")
    tender = stack.new_tender(a)
    bid = a.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
    r = b.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Intrus"})
    assert r.status_code == 404 and r.json()["code"] == "tender.not_found"
    for method, path in (("GET", f"/v1/bids/{bid['id']}"), ("GET", f"/v1/bids/{bid['id']}/receipt"),
                         ("PUT", f"/v1/bids/{bid['id']}/files/x.txt"), ("POST", f"/v1/bids/{bid['id']}/submit")):
        r = b.request(method, path, content=b"x" if method == "PUT" else None)
        assert r.status_code == 404 and r.json()["code"] == "bid.not_found", (method, path, r.text)
    anonymous = stack.client().get(f"/v1/bids/{bid['id']}", headers={"Authorization": ""})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth.missing"
    forged = stack.client().get(f"/v1/bids/{bid['id']}", headers={"Authorization": "Bearer bpk_forged"})
    assert forged.status_code == 403 and forged.json()["code"] == "auth.denied"
    revoked = a.headers["Authorization"].split()[1]
    env = {**os.environ, **stack.env}
    out = subprocess.run([sys.executable, "-m", "bidproc.cli", "apikey", "revoke", "--key", revoked], env=env,
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "platform-a" in out.stdout, out.stdout + out.stderr
    assert a.get(f"/v1/bids/{bid['id']}").json()["code"] == "auth.denied"
    with stack.rt.db.session() as s:
        denied = s.execute(select(JournalRow).where(JournalRow.action == "access.denied")).scalars().all()
    assert len([d for d in denied if d.subject in {bid["id"], tender["id"]}]) == 5
    assert len([d for d in denied if d.detail.get("reason") == "unknown or revoked API key"]) == 2


def test_journal_chain_verifies_and_breaks_when_edited(stack: Stack) -> None:
    http = stack.client()
    tender = stack.new_tender(http)
    http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"})
    env = {**os.environ, **stack.env}
    ok = subprocess.run([sys.executable, "-m", "bidproc.cli", "journal", "verify"], env=env, cwd=ROOT,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with stack.rt.db.session() as s:
        assert verify(s).ok
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}", autocommit=True) as conn:
        (original,) = conn.execute("SELECT actor FROM journal WHERE seq = 2").fetchone() or ("",)
        conn.execute("UPDATE journal SET actor = 'someone-else' WHERE seq = 2")
    with stack.rt.db.session() as s:
        check = verify(s)
    assert not check.ok and check.broken_at == 2
    bad = subprocess.run([sys.executable, "-m", "bidproc.cli", "journal", "verify"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and '"broken_at": 2' in bad.stdout
    # deleting the last entry is detected too
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}", autocommit=True) as conn:
        conn.execute("UPDATE journal SET actor = %s WHERE seq = 2", (original,))
    with stack.rt.db.session() as s:
        assert verify(s).ok  # restored: the chain holds again
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}", autocommit=True) as conn:
        conn.execute("DELETE FROM journal WHERE seq = (SELECT max(seq) FROM journal)")
    with stack.rt.db.session() as s:
        check = verify(s)
    assert not check.ok and "deleted" in check.reason




def test_journal_anchor_defeats_a_recomputed_chain(stack: Stack) -> None:
    """Someone who edits an entry and recomputes every hash after it still fails the anchor check."""
    from bidproc.journal.chain import entry_hash

    http = stack.client()
    stack.new_tender(http)
    env = {**os.environ, **stack.env}
    anchored = subprocess.run([sys.executable, "-m", "bidproc.cli", "journal", "anchor"], env=env, cwd=ROOT,
                              capture_output=True, text=True)
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    stack.new_tender(http)
    ok = subprocess.run([sys.executable, "-m", "bidproc.cli", "journal", "verify"], env=env, cwd=ROOT,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and '"anchors": 1' in ok.stdout, ok.stdout
    with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={stack.db_name}", autocommit=True) as conn:
        rows = conn.execute("SELECT seq, at, actor, action, subject, detail FROM journal ORDER BY seq").fetchall()
        prev = "0" * 64
        for seq, at, actor, action, subject, detail in rows:
            if seq == 1:
                actor = "forged"
            digest = entry_hash(seq, at, actor, action, subject, detail, prev)
            conn.execute("UPDATE journal SET actor=%s, prev_hash=%s, hash=%s WHERE seq=%s", (actor, prev, digest, seq))
            prev = digest
        conn.execute("UPDATE journal_head SET hash=%s", (prev,))
    with stack.rt.db.session() as s:
        assert verify(s).ok  # the chain alone no longer shows the edit...
    bad = subprocess.run([sys.executable, "-m", "bidproc.cli", "journal", "verify"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "is not what was timestamped" in bad.stdout  # ...the anchor does
