"""The production topology on services of a run's own: ``bidproc serve`` and ``bidproc worker`` processes,
Redis, an S3 endpoint, PostgreSQL, clamd; and the checks that follow a run. No pytest here.

The checks read what the service itself wrote, with the service's own code: the journal's hash chain
(:func:`bidproc.journal.chain.verify`), each stored file decrypted and authenticated chunk by chunk
(:class:`~bidproc.encryption.stream.DecryptingReader`, whose GCM tags and final flag catch any
truncation or change) against the SHA-256 in its receipt, and each bid's manifest against its objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bidproc.archive.store import StoredObject, bid_prefix
from bidproc.config import load_settings
from bidproc.desk.tenants import create_api_key
from bidproc.domain import BidStatus
from bidproc.encryption.stream import DecryptingReader
from bidproc.journal.chain import verify
from bidproc.metadata.models import BidRow, DocumentRow, JournalRow, ReceiptRow
from bidproc.runtime import Runtime
from tests.processes import spawn, stop, wait_healthy
from tests.services import free_port

FINAL = {s.value for s in BidStatus if s.final}


class Topology:
    """API and workers as separate processes (each killable, each with its own RSS)."""

    def __init__(self, tmp: Path, *, redis_url: str, s3_endpoint: str, database_url: str, clamd_port: int,
                 data_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.env = {
            "BIDPROC_SERVICE_DATA_DIR": str(data_dir or tmp / "data"),
            "BIDPROC_SERVICE_SERVICE_KEY": os.urandom(32).hex(),
            "BIDPROC_DATABASE_URL": database_url,
            "BIDPROC_STORAGE_BACKEND": "s3",
            "BIDPROC_STORAGE_S3_ENDPOINT": s3_endpoint,
            "BIDPROC_STORAGE_S3_SECRET_KEY": "moto-accepts-any",
            "BIDPROC_STORAGE_S3_BUCKET": f"bidproc-{uuid.uuid4().hex[:12]}",
            "BIDPROC_QUEUE_BACKEND": "redis",
            "BIDPROC_QUEUE_REDIS_URL": redis_url,
            "BIDPROC_QUEUE_NAMESPACE": f"bidproc-faults-{uuid.uuid4().hex[:8]}",
            "BIDPROC_CLAMD_HOST": "127.0.0.1",
            "BIDPROC_CLAMD_PORT": str(clamd_port),
            "BIDPROC_CLAMD_TIMEOUT_SECONDS": "60",
            **(env or {}),
        }
        self.settings = load_settings(env=self.env)
        self.rt = Runtime(self.settings)  # this process's view: API keys, and the checks afterwards
        self.rt.migrate()  # before any process starts
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        return spawn(argv, {**os.environ, **self.env}, self.tmp / log_name)

    def start_api(self) -> None:
        self.api = self._spawn(["serve", "--host", "127.0.0.1", "--port", str(self.port)], "api.log")
        wait_healthy(self.api, self.base_url, self.tmp / "api.log")

    def start_worker(self, threads: int | None = None) -> subprocess.Popen[bytes]:
        argv = ["worker"] + (["--threads", str(threads)] if threads else [])
        proc = self._spawn(argv, f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        log = self.tmp / f"worker-{self.workers.index(proc)}.log"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if " ready" in log.read_text(errors="replace"):
                return
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready\n{log.read_text(errors='replace')}")

    def kill_worker(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its whole group (its intake sandboxes too), as an OOM killer would."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def live_workers(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.workers if p.poll() is None]

    def key(self, tenant: str) -> str:
        return create_api_key(self.rt.db, tenant, self.rt.clock())

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def close(self) -> None:
        for proc in [*self.workers, *([self.api] if self.api else [])]:
            stop(proc)
        self.rt.close()


def wait_drained(rt: Runtime, seconds: float) -> int:
    """Wait until every bid with a receipt is final; returns how many are not."""
    end = time.monotonic() + seconds
    while True:
        try:
            with rt.db.session() as s:
                left = s.execute(select(func.count()).select_from(BidRow)
                                 .join(ReceiptRow, ReceiptRow.bid_id == BidRow.id)
                                 .where(BidRow.status.not_in(FINAL))).scalar_one()
        except Exception:  # the database may be the service that is down right now
            left = -1
        if left == 0 or time.monotonic() > end:
            return left
        time.sleep(0.5)


@dataclass
class Checked:
    receipts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    finals_per_bid: Counter[int] = field(default_factory=Counter)  # how many final journal entries a bid has
    failed: int = 0
    unfinished: list[str] = field(default_factory=list)
    finals_without_receipt: int = 0
    documents: int = 0
    documents_verified: int = 0
    manifest_objects: int = 0
    manifest_objects_verified: int = 0
    problems: list[str] = field(default_factory=list)
    journal_ok: bool = False
    journal_entries: int = 0
    undrained: int = 0  # bids still in the pipeline when the drain ran out: then nothing else was checked

    def lines(self) -> list[str]:
        if self.undrained:
            return [f"NOT CHECKED: {self.undrained} receipted bids still in the pipeline (or the database"
                    " unreachable, -1) when the drain ran out. Checking beside a working pipeline reports its"
                    " races (a file sealed and removed meanwhile, a journal head that moved), not losses:"
                    " rerun with a longer --drain or fewer --bids."]
        return [
            f"receipts {self.receipts}; final statuses {dict(self.statuses)}; unfinished {len(self.unfinished)}",
            f"final journal entries per receipted bid: {dict(self.finals_per_bid)} (want {{1: {self.receipts}}});"
            f" bid.failed {self.failed}; final entries for bids without a receipt {self.finals_without_receipt}",
            f"stored files verified {self.documents_verified}/{self.documents}; manifest objects verified"
            f" {self.manifest_objects_verified}/{self.manifest_objects}",
            f"journal: {'verifies' if self.journal_ok else 'BROKEN'} ({self.journal_entries} entries)",
            *(f"problem: {p}" for p in self.problems[:20]),
        ]


def _stored_digest(rt: Runtime, bid: BidRow, doc: DocumentRow, shares: Mapping[str, list[str]],
                   openers: dict[str, tuple[Any, Any]]) -> tuple[str, int]:
    """SHA-256 and size of what a stored file decrypts to: with the service key while the bid still has
    its data key, with the tender's opening key (its shares) once the encryption stage sealed it."""
    digest, size = hashlib.sha256(), 0
    if bid.wrapped_key is not None:
        reader = DecryptingReader(rt.service_key.unwrap(bid.wrapped_key), StoredObject(rt.store, doc.object_key),
                                  context=doc.object_key.encode())
        while piece := reader.read(1 << 20):
            digest.update(piece)
            size += len(piece)
        return digest.hexdigest(), size
    from bidproc.desk.unsealing import read_sealed
    from bidproc.encryption import tender_keys
    from bidproc.encryption.committee import combine
    from bidproc.encryption.envelope import unseal
    from bidproc.metadata.models import TenderRow

    if bid.tender_id not in openers:
        with rt.db.session() as s:
            tender = s.get(TenderRow, bid.tender_id)
            assert tender is not None and tender.opening is not None
            opening = tender.opening
        openers[bid.tender_id] = (combine(tender_keys.committee_key(opening), shares[bid.tender_id]),
                                  tender_keys.certificates(opening)[0])
    private, cert = openers[bid.tender_id]

    class _Sink:
        def write(self, data: bytes | memoryview) -> int:
            nonlocal size
            digest.update(data)
            size += len(data)
            return len(data)

    unseal(read_sealed(rt, doc.object_key), _Sink(), private, cert)  # type: ignore[arg-type]
    return digest.hexdigest(), size


def check(rt: Runtime, shares: Mapping[str, list[str]]) -> Checked:
    """``shares``: each tender's opening shares, to open what the encryption stage sealed (and only that)."""
    out = Checked()
    with rt.db.session() as s:
        receipted = set(s.execute(select(ReceiptRow.bid_id)).scalars())
        bids = {b.id: b for b in s.execute(select(BidRow)).scalars()}
        finals = Counter(s.execute(select(JournalRow.subject).where(
            JournalRow.action.in_(["bid.processed", "bid.quarantined"]))).scalars())
        out.failed = s.execute(select(func.count()).select_from(JournalRow).where(
            JournalRow.action == "bid.failed")).scalar_one()
        docs = list(s.execute(select(DocumentRow).where(DocumentRow.bid_id.in_(receipted))).scalars())
        journal = verify(s)
    out.journal_ok, out.journal_entries = journal.ok, journal.entries
    if not journal.ok:
        out.problems.append(f"journal breaks at {journal.broken_at}: {journal.reason}")
    out.receipts = len(receipted)
    for bid_id in receipted:
        status = bids[bid_id].status
        out.statuses[status] += 1
        out.finals_per_bid[finals[bid_id]] += 1
        if status not in FINAL:
            out.unfinished.append(bid_id)
    out.finals_without_receipt = sum(n for b, n in finals.items() if b not in receipted)
    openers: dict[str, tuple[Any, Any]] = {}
    for doc in docs:
        out.documents += 1
        try:
            digest, size = _stored_digest(rt, bids[doc.bid_id], doc, shares, openers)
            if (digest, size) == (doc.sha256, doc.size):
                out.documents_verified += 1
            else:
                out.problems.append(f"{doc.object_key}: content differs from its receipt")
        except Exception as exc:
            out.problems.append(f"{doc.object_key}: {exc}")
    for bid_id in receipted:
        if bids[bid_id].status not in {BidStatus.PROCESSED.value, BidStatus.QUARANTINED.value}:
            continue
        prefix = bid_prefix(bids[bid_id].tender_id, bid_id)
        try:
            manifest = json.loads(rt.store.get_bytes(f"{prefix}/manifest.json"))
        except Exception as exc:
            out.problems.append(f"{prefix}/manifest.json: {exc}")
            continue
        for obj in manifest["objects"]:
            out.manifest_objects += 1
            if hashlib.sha256(rt.store.get_bytes(obj["key"])).hexdigest() == obj["sha256"]:
                out.manifest_objects_verified += 1
            else:
                out.problems.append(f"{obj['key']}: differs from the manifest")
    return out
