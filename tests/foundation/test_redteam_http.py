"""Red team, HTTP: hostile requests get an error the OpenAPI document promises, never a 500.

Every answer is checked against /openapi.json as served: its status is documented for the operation,
in the ``{code, message}`` shape, and its code is one the document lists for that status. Each case was
found by probing the running service (PostgreSQL, S3, Redis, the API over loopback) with crafted input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bidproc.config import ClamdSettings
from bidproc.errors import Code, http_status
from tests.foundation.redteam_http import assert_documented_error, raw_exchange, status_of
from tests.foundation.stack import Stack
from tests.opening.helpers import client, deposit, tender


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, clamd_settings: ClamdSettings,
        postgres_url: str, redis_url: str) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("redteam"), s3_endpoint, clamd_settings,
                  env={"BIDPROC_API_UPLOAD_IDLE_SECONDS": "2"})
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def spec(api: Stack) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{api.port}/openapi.json").json())


def _certificate(key: Any, signer: Any | None = None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acheteur")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(signer or key, hashes.SHA256()))


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _with_curve(parameters: asn1_keys.ECDomainParameters) -> str:
    """A certificate whose EC key names curve parameters no library here can use (the DER is otherwise
    well-formed: it parses, and only fails once its public key is asked for)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = asn1_x509.Certificate.load(_certificate(key).public_bytes(serialization.Encoding.DER))
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    algorithm = spki["algorithm"]
    algorithm["parameters"] = parameters
    cert["tbs_certificate"]["subject_public_key_info"] = asn1_keys.PublicKeyInfo(
        {"algorithm": algorithm, "public_key": spki["public_key"]})
    der = cert.dump(force=True)
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()


def _rsa_with(exponent: int, modulus: int | None = None) -> str:
    """A 3072-bit RSA certificate whose public numbers were rewritten (a key nothing can encrypt to)."""
    key = rsa.generate_private_key(65537, 3072)
    cert = asn1_x509.Certificate.load(_certificate(key).public_bytes(serialization.Encoding.DER))
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    n = modulus or spki["public_key"].parsed["modulus"].native
    public = asn1_keys.RSAPublicKey({"modulus": n, "public_exponent": exponent})
    cert["tbs_certificate"]["subject_public_key_info"] = asn1_keys.PublicKeyInfo(
        {"algorithm": spki["algorithm"], "public_key": public})
    return x509.load_der_x509_certificate(cert.dump(force=True)).public_bytes(serialization.Encoding.PEM).decode()


UNKNOWN_CURVE = asn1_keys.ECDomainParameters(name="named", value="1.3.6.1.4.1.99999.1")
UNSEALABLE = [
    pytest.param(lambda: _with_curve(UNKNOWN_CURVE), id="unknown-named-curve"),
    pytest.param(lambda: _with_curve(asn1_keys.ECDomainParameters(name="implicit_ca", value=None)),
                 id="implicit-ca-curve"),
    pytest.param(lambda: _rsa_with(1), id="rsa-exponent-1"),
    pytest.param(lambda: _rsa_with(2), id="rsa-exponent-2"),
    pytest.param(lambda: _rsa_with(65537, 1 << 3072), id="rsa-even-modulus"),
    pytest.param(lambda: _pem(_certificate(rsa.generate_private_key(65537, 1024))), id="rsa-1024"),
]


def _tender_body(opening: dict[str, Any]) -> dict[str, Any]:
    return {"reference": f"T-{uuid.uuid4().hex[:8]}", "title": "Voirie", "buyer": "Commune",
            "deadline": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "opening": opening}


@pytest.mark.parametrize("pem", UNSEALABLE)
def test_a_recipient_certificate_nothing_can_seal_to_is_refused_not_a_500(api: Stack, spec: dict[str, Any],
                                                                          pem: Any) -> None:
    http = client(api, "ville", "platform")
    text = pem()
    r = http.post("/v1/tenders", json=_tender_body({"mode": "recipients", "certificates": [text]}))
    assert_documented_error(spec, "POST", "/v1/tenders", r)
    assert r.json()["code"] == "seal.recipient_unsupported", r.text
    members = {"mode": "committee", "threshold": 2, "members": ["a", "b"], "member_certificates": {"b": text}}
    r = http.post("/v1/tenders", json=_tender_body(members))
    assert_documented_error(spec, "POST", "/v1/tenders", r)
    assert r.json()["code"] == "seal.recipient_unsupported", r.text


@pytest.mark.parametrize("contract", [
    {"kind": "works", "performance_end": "9999-12-31"},
    {"kind": "works", "signed": "9995-01-01", "performance_end": "9998-06-30"},
    {"kind": "supplies_services", "signed": "9999-12-31"},
    {"signed": "9997-02-28"},
])
def test_contract_dates_whose_retention_is_past_the_calendar_are_refused(api: Stack, spec: dict[str, Any],
                                                                        contract: dict[str, Any]) -> None:
    platform, buyer = client(api, "ville", "platform"), client(api, "ville", "buyer")
    t = tender(api, platform)
    deposit(platform, t["id"], {"offre.txt": b"offre"})  # a receipt: the retention is computed for it
    r = buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": contract})
    assert_documented_error(spec, "PATCH", "/v1/tenders/{tender_id}", r)
    assert r.json()["code"] == "request.invalid", r.text
    assert platform.get(f"/v1/tenders/{t['id']}").json()["contract"] is None, "nothing stored"
    ok = buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": {"kind": "works", "performance_end": "2031-06-30"}})
    assert ok.status_code == 200, ok.text


def test_evidence_package_versions_that_do_not_exist_are_client_errors(api: Stack, spec: dict[str, Any]) -> None:
    platform, archivist = client(api, "ville", "platform"), client(api, "ville", "archivist")
    t = tender(api, platform)
    submitted = deposit(platform, t["id"], {"offre.txt": b"offre"})  # no worker: never archived here
    draft = deposit(platform, t["id"], {"offre.txt": b"offre"}, submit=False)
    template = "/v1/bids/{bid_id}/evidence.zip"
    expected = {(submitted, None): "evidence.pending", (draft, None): "evidence.pending",
                (submitted, "1"): "evidence.not_found", (submitted, "99"): "evidence.not_found",
                (submitted, str(10**30)): "evidence.not_found", (submitted, "0"): "request.invalid",
                (submitted, "-1"): "request.invalid", (submitted, "1.5"): "request.invalid"}
    for (bid, version), code in expected.items():
        r = archivist.get(f"/v1/bids/{bid}/evidence.zip", params={"version": version} if version else None)
        assert_documented_error(spec, "GET", template, r)
        assert r.json()["code"] == code, (version, r.text)


def test_an_idle_upload_answer_is_documented(api: Stack, spec: dict[str, Any]) -> None:
    http = client(api, "ville", "platform")
    t = tender(api, http)
    bid = deposit(http, t["id"], {}, submit=False)
    key = http.headers["Authorization"].split()[1]
    answer = raw_exchange(api.port, f"PUT /v1/bids/{bid}/files/lent.bin HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n".encode() + b"x" * 10)
    assert status_of(answer) == 408, answer[:300]
    body = answer.partition(b"\r\n\r\n")[2]
    r = httpx.Response(408, headers={"content-type": "application/json"}, content=body)
    assert_documented_error(spec, "PUT", "/v1/bids/{bid_id}/files/{name}", r)


def test_every_code_is_documented_with_its_status_and_no_other_error_shape(spec: dict[str, Any]) -> None:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                schema = answer["content"]["application/json"]["schema"]
                assert schema.get("$ref", "").endswith("/ErrorOut"), (method, path, status, schema)
            statuses = {s for s in operation["responses"] if s.startswith(("4", "5"))}
            assert {str(http_status(c)) for c in Code} <= statuses, (method, path)
            for c in Code:
                assert f"`{c.value}`" in operation["responses"][str(http_status(c))]["description"], (path, c)


def test_routine_refusals_are_documented(api: Stack, spec: dict[str, Any]) -> None:
    http = client(api, "ville", "platform")
    t = tender(api, http)
    empty = deposit(http, t["id"], {}, submit=False)
    done = deposit(http, t["id"], {"offre.txt": b"offre"})
    cases = [
        ("POST", "/v1/bids/{bid_id}/submit", http.post(f"/v1/bids/{empty}/submit")),
        ("POST", "/v1/bids/{bid_id}/submit", http.post(f"/v1/bids/{done}/submit")),
        ("PUT", "/v1/bids/{bid_id}/files/{name}", http.put(f"/v1/bids/{done}/files/x.txt", content=b"x")),
        ("PUT", "/v1/bids/{bid_id}/backup/{name}", http.put(f"/v1/bids/{done}/backup/x.txt", content=b"x")),
        ("GET", "/v1/bids/{bid_id}/receipt", http.get(f"/v1/bids/{empty}/receipt")),
        ("GET", "/v1/bids/{bid_id}", http.get(f"/v1/bids/{uuid.uuid4()}")),
        ("POST", "/v1/tenders", http.post("/v1/tenders", json={**_tender_body({"mode": "x"}), "opening": None,
                                                                "deadline": "2001-01-01T00:00:00Z"})),
        ("POST", "/v1/tenders", http.post("/v1/tenders", content=b"{", headers={"content-type": "application/json"})),
        ("POST", "/v1/tenders/{tender_id}/bids", http.post(f"/v1/tenders/{t['id']}/bids", json={"bidder": " "})),
    ]
    for method, template, r in cases:
        assert_documented_error(spec, method, template, r)
