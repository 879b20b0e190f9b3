"""``bidproc demo``: a tender, a bid with a clean file and the EICAR test file, followed to the end.

Runs the real service in-process on a free loopback port (embedded defaults unless configured
otherwise), talks to it over HTTP like a platform would, and checks the receipt with openssl.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bidproc.cli import command
from bidproc.encryption.cli import await_opening
from bidproc.ops import ensure_clamd, settings_for, settings_options

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def sample_pdf() -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@command("bidproc demo", subprocess.CalledProcessError)
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc demo", description=__doc__)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = settings_options(parser).parse_args(argv)
    import uvicorn

    from bidproc.api.app import create_app
    from bidproc.desk.tenants import create_api_key
    from bidproc.pipeline.queue import Pipeline
    from bidproc.runtime import Runtime

    settings = settings_for(args.data_dir, args.config)
    print(f"[1/6] clamd: {ensure_clamd(settings)}")
    clock = _DemoClock()
    rt = Runtime(settings, clock=clock)
    rt.migrate()
    pipeline = Pipeline(rt)
    pipeline.start()
    key = create_api_key(rt.db, "demo-platform", rt.clock())
    buyer_key = create_api_key(rt.db, "demo-platform", rt.clock(), "buyer")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt, pipeline), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    print(f"[2/6] service up at {base} (data in {settings.data_path})")
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            tender = _ok(
                http.post(
                    "/v1/tenders",
                    json={
                        "reference": f"DEMO-{int(time.time())}",
                        "title": "Demo works",
                        "buyer": "Ville de Démo",
                        "deadline": deadline,
                    },
                )
            )
            # No "opening" given: the tender opens with a committee of one; its one share is shown only here.
            share = tender["opening"]["shares"][0]["share"]  # type: ignore[index]
            clean = _ok(http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "Honnête SARL"}))
            memoire = b"Memoire technique de Honnete SARL\n"
            http.put(f"/v1/bids/{clean['id']}/files/memoire.txt", content=memoire).raise_for_status()
            http.post(f"/v1/bids/{clean['id']}/submit").raise_for_status()
            bid = _ok(http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME SAS"}))
            print(f"[3/6] tender {tender['reference']} (opening share given once: {share.split()[0]} ...) "
                  f"and bid {bid['id']} created")
            for name, data in (
                ("offre.pdf", sample_pdf()),
                ("memoire.txt", b"Memoire technique\n"),
                ("eicar.com", EICAR),
            ):
                r = http.put(f"/v1/bids/{bid['id']}/files/{name}", content=data)
                r.raise_for_status()
                print(f"      uploaded {name}: {r.json()['size']} bytes, sha256 {r.json()['sha256'][:16]}...")
            submitted = http.post(f"/v1/bids/{bid['id']}/submit")
            submitted.raise_for_status()
            print("[4/6] deposit receipt:")
            print(submitted.text)
            print(f"      timestamp check by openssl: {_openssl_check(http, bid['id'], rt)}")
            print("[5/6] waiting for the pipeline", end="", flush=True)
            status = _wait(http, bid["id"], args.timeout)
            print()
            print("[6/6] outcome:")
            for f in status["files"]:
                malware = (f.get("detail") or {}).get("malware") or []
                extra = f" ({malware[0]['signature']})" if malware else ""
                print(f"      {f['name']:<12} {f['verdict']:<12} {f['code'] or ''}{extra}")
            print(f"      bid status: {status['status']}")
            opened_ok = _open(http, buyer_key, tender["id"], clean["id"], share, memoire, clock, args.timeout)
            return 0 if status["status"] == "quarantined" and opened_ok else 1
    finally:
        server.should_exit = True
        thread.join(10)
        pipeline.stop()
        rt.close()


class _DemoClock:
    """The demo's service clock: real time, moved past the deadline for the opening (said when it is)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _open(http: httpx.Client, buyer_key: str, tender_id: str, bid_id: str, share: str, expected: bytes,
          clock: _DemoClock, timeout: float) -> bool:
    """Seal, then open: the clean bid is sealed to the tender's key; after the deadline one share opens it."""
    _wait(http, bid_id, timeout)
    buyer = {"Authorization": f"Bearer {buyer_key}"}
    early = http.post(f"/v1/tenders/{tender_id}/open", json={"shares": [share]}, headers=buyer)
    print(f"[opening] before the deadline: {early.status_code} {early.json()['code']}")
    clock.offset = timedelta(hours=1, minutes=1)
    print("[opening] demo only: the service clock is moved 1 h 1 min forward, past the deadline")
    opened = http.post(f"/v1/tenders/{tender_id}/open", json={"shares": [share]}, headers=buyer)
    # the bids are decrypted by a queued job: follow it
    body = await_opening(http, tender_id, buyer, every=0.2, timeout=timeout) if opened.status_code == 202 else {}
    print(f"[opening] with the share: {opened.status_code}, job {body.get('state')}: opened "
          f"{len(body.get('opened', []))} bid(s), {len(body.get('quarantined', []))} quarantined (not opened)")
    got = http.get(f"/v1/bids/{bid_id}/files/memoire.txt", headers=buyer)
    same = got.status_code == 200 and got.content == expected
    print(f"[opening] memoire.txt read back by the buyer: {'byte-identical' if same else 'MISMATCH'}")
    return opened.status_code == 202 and bid_id in body.get("opened", []) and same


def _ok(response: httpx.Response) -> dict[str, str]:
    if response.is_error:
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    body: dict[str, str] = response.json()
    return body


def _wait(http: httpx.Client, bid_id: str, timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status: dict[str, Any] = http.get(f"/v1/bids/{bid_id}").json()
        if status["status"] in {"processed", "quarantined", "failed", "late"}:
            return status
        print(".", end="", flush=True)
        time.sleep(0.5)
    raise SystemExit(f"\nbid {bid_id} not processed after {timeout}s")


def _openssl_check(http: httpx.Client, bid_id: str, rt: object) -> str:
    if not shutil.which("openssl"):
        return "openssl not installed"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "receipt.json").write_bytes(http.get(f"/v1/bids/{bid_id}/receipt").content)
        (d / "receipt.tsr").write_bytes(http.get(f"/v1/bids/{bid_id}/receipt.tsr").content)
        chain = http.get("/v1/timestamping/certificates").text
        (d / "tsa.pem").write_text(chain)
        # The chain's last certificate is the root the local TSA was issued by.
        proc = subprocess.run(
            [
                "openssl",
                "ts",
                "-verify",
                "-data",
                str(d / "receipt.json"),
                "-in",
                str(d / "receipt.tsr"),
                "-CAfile",
                str(d / "tsa.pem"),
            ],
            capture_output=True,
            text=True,
        )
        return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1]
