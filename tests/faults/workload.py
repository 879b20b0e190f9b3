"""Simulated platforms: bids of mixed files (a few hostile) submitted over HTTP, retried as a platform would.

No pytest here: ``bench/rush.py`` and ``bench/faults.py`` use it too. A platform retries what the
service says is temporary (5xx, 408, 429, a dropped connection) and records every refusal's code, so a
run can show that an upload which could not be stored was refused, clearly, before any receipt.
"""

from __future__ import annotations

import io
import random
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import httpx
import pikepdf

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEMPORARY = {408, 429, 500, 502, 503, 504}


@cache
def pdf_bytes(pages: int) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@cache
def zip_bomb() -> bytes:
    """64 MiB of zeros deflated to a few tens of KB: refused as ``archive.bomb`` by ratio, never unpacked."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("annexe.txt", b"\0" * (64 << 20))
    return out.getvalue()


@dataclass(frozen=True)
class BidPlan:
    files: tuple[tuple[str, bytes], ...]
    hostile: bool = False


def plan_bids(count: int, files_per_bid: int, *, seed: int = 13, hostile_every: int = 25,
              max_kb: int = 256, signed: tuple[bytes, ...] = ()) -> list[BidPlan]:
    """Mixed sizes (1 KB .. ``max_kb``), PDFs, a signed file in some bids when ``signed`` is given, and
    every ``hostile_every``-th bid carrying the EICAR test file or a zip bomb."""
    rng = random.Random(seed)
    plans = []
    for i in range(count):
        files: list[tuple[str, bytes]] = []
        for j in range(files_per_bid):
            kind = rng.random()
            if kind < 0.4:
                files.append((f"piece-{j}.pdf", pdf_bytes(rng.randint(1, 5))))
            else:
                size = int(1024 * rng.uniform(1, max_kb))
                files.append((f"annexe-{j}.txt", (f"bid {i} file {j} ".encode() * (size // 16 + 1))[:size]))
        if signed and i % 3 == 0:
            files[-1] = ("offre-signee.pdf", signed[i % len(signed)])
        hostile = hostile_every > 0 and i % hostile_every == hostile_every - 1
        if hostile:
            files[0] = ("virus.txt", EICAR) if (i // hostile_every) % 2 == 0 else ("bombe.zip", zip_bomb())
        plans.append(BidPlan(tuple(files), hostile))
    return plans


@dataclass
class BidResult:
    bid_id: str = ""
    receipt: bool = False
    submit_seconds: float = 0.0  # the submit request alone: the receipt's latency
    total_seconds: float = 0.0
    refusals: Counter[str] = field(default_factory=Counter)
    error: str = ""


class Platform:
    def __init__(self, base_url: str, key: str, *, give_up_seconds: float = 120) -> None:
        self._base, self._key, self.give_up = base_url, key, give_up_seconds
        self._local = threading.local()
        self.shares: dict[str, list[str]] = {}  # tender -> its opening shares, shown once at creation

    @property
    def http(self) -> httpx.Client:
        if not hasattr(self._local, "http"):
            self._local.http = httpx.Client(base_url=self._base, headers={"Authorization": f"Bearer {self._key}"},
                                            timeout=60)
        client: httpx.Client = self._local.http
        return client

    def _call(self, result: BidResult, method: str, url: str, ok: set[int], **kw: object) -> httpx.Response:
        """Retry what is temporary; every refusal's code is counted."""
        end = time.monotonic() + self.give_up
        while True:
            try:
                r = self.http.request(method, url, **kw)  # type: ignore[arg-type]
            except httpx.TransportError as exc:
                result.refusals[f"transport.{type(exc).__name__}"] += 1
            else:
                if r.status_code in ok:
                    return r
                code = _code(r)
                result.refusals[f"{r.status_code} {code}"] += 1
                if r.status_code not in TEMPORARY:
                    return r
            if time.monotonic() > end:
                raise TimeoutError(f"{method} {url}: still refused after {self.give_up}s")
            time.sleep(0.3)

    def new_tender(self, reference: str, hours: float = 24) -> str:
        deadline = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + hours * 3600))
        r = self._call(BidResult(), "POST", "/v1/tenders", {201}, json={
            "reference": reference, "title": "Travaux", "buyer": "Commune de Test", "deadline": deadline})
        tender = r.json()
        # the default opening is a committee of one: its share is what opens the sealed bids
        self.shares[tender["id"]] = [s["share"] for s in (tender.get("opening") or {}).get("shares", [])]
        return str(tender["id"])

    def submit(self, tender_id: str, plan: BidPlan, bidder: str) -> BidResult:
        result, start = BidResult(), time.perf_counter()
        try:
            r = self._call(result, "POST", f"/v1/tenders/{tender_id}/bids", {201}, json={"bidder": bidder})
            result.bid_id = r.json()["id"]
            for name, data in plan.files:
                r = self._call(result, "PUT", f"/v1/bids/{result.bid_id}/files/{name}", {201}, content=data)
                if r.status_code == 409 and _code(r) == "file.duplicate":
                    continue  # an earlier try was stored, its answer lost
                if r.status_code != 201:
                    raise RuntimeError(f"upload refused: {r.status_code} {r.text[:200]}")
            sent = time.perf_counter()
            r = self._call(result, "POST", f"/v1/bids/{result.bid_id}/submit", {201})
            result.submit_seconds = time.perf_counter() - sent
            if r.status_code == 409 and _code(r) == "bid.already_submitted":  # an earlier try's answer was lost
                r = self._call(result, "GET", f"/v1/bids/{result.bid_id}/receipt", {200})
            result.receipt = r.status_code in {200, 201}
        except Exception as exc:  # reported, not raised: the run goes on and the checks count it
            result.error = f"{type(exc).__name__}: {exc}"
        result.total_seconds = time.perf_counter() - start
        return result


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code", "?"))
    except ValueError:
        return "?"


def run(platform: Platform, tender_id: str, plans: list[BidPlan], *, concurrency: int = 8,
        window_seconds: float = 0.0) -> list[BidResult]:
    """Submit every plan; with a window, bid i starts at i/len * window (a steady arrival rate)."""
    start = time.monotonic()

    def one(i: int) -> BidResult:
        if window_seconds:
            time.sleep(max(0.0, start + window_seconds * i / len(plans) - time.monotonic()))
        return platform.submit(tender_id, plans[i], f"Entreprise {i}")

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(len(plans))))
