"""``bidproc open``: the opening ceremony against the API, or offline from downloaded envelopes.

    bidproc open --tender T --share FILE... [--url URL] [--key API_KEY]
    bidproc open --offline --key key.pem --cert cert.pem --in DIR -o OUT

Offline, every ``*.p7m`` under DIR (as served by ``GET /v1/bids/{bid}/sealed/{name}``) is decrypted
with the buyer's own key into OUT (same relative path, without ``.p7m``), streamed; a file appears only
once its content is authenticated. Progress goes to stderr. Exit 0 all opened, 1 one or more failed, 2
usage or environment error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from bidproc.cli import usage_error
from bidproc.errors import BidprocError


class _Progress:
    """Counts what the unsealer reads; prints at most twice a second (hand-written: no library needed)."""

    def __init__(self, fh: BinaryIO, label: str, total: int) -> None:
        self._fh, self._label, self._total = fh, label, max(total, 1)
        self._done, self._shown = 0, 0.0

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._done += len(data)
        now = time.monotonic()
        if now - self._shown >= 0.5 or not data:
            self._shown = now
            print(f"\r{self._label}: {100 * self._done // self._total:3d}% "
                  f"({self._done >> 20} of {self._total >> 20} MiB)", end="", file=sys.stderr, flush=True)
        return data


def _offline(args: argparse.Namespace) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from bidproc.encryption.envelope import unseal_to_path

    try:
        key = serialization.load_pem_private_key(Path(args.key).read_bytes(), None)
        cert = x509.load_pem_x509_certificate(Path(args.cert).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        return usage_error("bidproc open", f"key or certificate not usable: {exc}")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return usage_error("bidproc open", "the key must be RSA or EC")
    source, out = Path(args.input), Path(args.output)
    envelopes = sorted(p for p in source.rglob("*.p7m") if p.is_file())
    if not envelopes:
        return usage_error("bidproc open", f"no .p7m file under {source}")
    failed = 0
    for envelope in envelopes:
        relative = envelope.relative_to(source).with_suffix("")
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with envelope.open("rb") as fh:
                info = unseal_to_path(_Progress(fh, str(relative), envelope.stat().st_size),  # type: ignore[arg-type]
                                      target, key, cert)
            print(file=sys.stderr)
            print(json.dumps({"file": str(relative), "size": info.size, "sha256": info.sha256}))
        except BidprocError as exc:
            failed += 1
            print(file=sys.stderr)
            print(json.dumps({"file": str(relative), "error": exc.code.value, "message": exc.message}))
    return 1 if failed else 0


def _online(args: argparse.Namespace) -> int:
    import httpx

    api_key = args.key or os.environ.get("BIDPROC_API_KEY")
    if not api_key:
        return usage_error("bidproc open", "--key (a buyer's API key) or BIDPROC_API_KEY is required")
    try:
        shares = [" ".join(Path(f).read_text().split()) for f in args.share]
    except OSError as exc:
        return usage_error("bidproc open", exc)
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120) as http:
        try:
            r = http.post(f"/v1/tenders/{args.tender}/open", json={"shares": shares})
            body = r.json()
            if r.status_code == 202:  # the bids are decrypted by a job: follow it to its end
                body = await_opening(http, args.tender)
        except httpx.HTTPError as exc:
            return usage_error("bidproc open", exc)
    print(json.dumps(body, indent=1))
    return 0 if r.status_code == 202 and body.get("state") == "done" else 1


def await_opening(http: Any, tender: str, headers: dict[str, str] | None = None, every: float = 0.5,
                  timeout: float = 24 * 3600) -> dict[str, Any]:
    """Poll ``GET /v1/tenders/{tender}/opening`` until the run is done or failed; progress on stderr."""
    end, shown = time.monotonic() + timeout, False
    while True:
        r = http.get(f"/v1/tenders/{tender}/opening", headers=headers)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        if body["state"] in {"done", "failed"} or time.monotonic() > end:
            if shown:
                print(file=sys.stderr)
            return body
        progress, shown = body.get("progress") or {}, True
        print(f"\ropening: {body['state']} {progress.get('done', 0)}/{progress.get('total', 0)} bids",
              end="", file=sys.stderr, flush=True)
        time.sleep(every)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc open", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offline", action="store_true", help="decrypt downloaded envelopes with your own key")
    parser.add_argument("--tender", help="online: the tender to open")
    parser.add_argument("--share", action="append", default=[], metavar="FILE", help="online: a share (repeat)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="online: the API")
    parser.add_argument("--key", help="online: a buyer's API key; offline: your private key (PEM)")
    parser.add_argument("--cert", help="offline: your encryption certificate (PEM)")
    parser.add_argument("--in", dest="input", help="offline: the directory of downloaded .p7m envelopes")
    parser.add_argument("-o", "--output", help="offline: where the opened files go")
    args = parser.parse_args(argv)
    if args.offline:
        if not (args.key and args.cert and args.input and args.output):
            parser.error("--offline needs --key, --cert, --in and -o")
        return _offline(args)
    if not (args.tender and args.share):
        parser.error("needs --tender and at least one --share (or --offline)")
    return _online(args)
