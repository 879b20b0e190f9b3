"""Keys and clients for the opening tests."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from bidproc.desk.tenants import create_api_key
from bidproc.metadata.models import JournalRow
from tests.foundation.stack import Stack


def client(stack: Stack, tenant: str, role: str) -> httpx.Client:
    key = create_api_key(stack.rt.db, tenant, stack.rt.clock(), role)
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", headers={"Authorization": f"Bearer {key}"},
                        timeout=120)


def tender(stack: Stack, http: httpx.Client, opening: dict[str, Any] | None = None,
           hours: float = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": f"T-{uuid.uuid4().hex[:8]}", "title": "Voirie", "buyer": "Commune",
                            "deadline": (stack.clock() + timedelta(hours=hours)).isoformat()}
    if opening is not None:
        body["opening"] = opening
    r = http.post("/v1/tenders", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def deposit(http: httpx.Client, tender_id: str, files: dict[str, bytes], *, submit: bool = True) -> str:
    bid = http.post(f"/v1/tenders/{tender_id}/bids", json={"bidder": f"B-{uuid.uuid4().hex[:6]}"}).json()
    for name, data in files.items():
        assert http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data).status_code == 201
    if submit:
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
    return str(bid["id"])


def journal(stack: Stack, action: str, subject: str | None = None) -> list[JournalRow]:
    with stack.rt.db.session() as s:
        q = select(JournalRow).where(JournalRow.action == action)
        if subject is not None:
            q = q.where(JournalRow.subject == subject)
        return list(s.execute(q.order_by(JournalRow.seq)).scalars())


def certificate(kind: str, name: str) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a buyer's encryption certificate, RSA-3072 or P-256."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(65537, 3072) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1()))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def open_tender(http: httpx.Client, tender_id: str, shares: list[str], timeout: float = 90) -> dict[str, Any]:
    """Ask for the opening (202: a queued job) and follow the run to its end; returns its last status."""
    r = http.post(f"/v1/tenders/{tender_id}/open", json={"shares": shares})
    assert r.status_code == 202, r.text
    run = r.json()
    end = time.monotonic() + timeout
    while run["state"] not in {"done", "failed"}:
        assert time.monotonic() < end, run
        time.sleep(0.1)
        run = http.get(f"/v1/tenders/{tender_id}/opening").json()
    return dict(run)
