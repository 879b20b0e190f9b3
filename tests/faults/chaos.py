"""One fault-injection run, shared by ``tests/faults`` (small) and ``bench/faults.py`` (long). No pytest here.

Bids stream in from simulated platforms while a schedule of faults plays: SIGKILL a random worker
(a fresh one replaces it), restart Redis (nothing persisted: every queued message is lost), take the S3
endpoint down, stop clamd, stop PostgreSQL, fill the data directory's disk. Then the pipeline drains and
:func:`tests.faults.topology.check` counts what the service wrote.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.faults import workload
from tests.faults.services import OwnClamd, OwnPostgres, OwnRedis, SmallDisk, TcpGate, can_mount
from tests.faults.topology import Checked, Topology, check, wait_drained

# Short timings so that a run recovers in seconds: leases, the reconciler, the backoff of waiting bids.
FAST = {
    "BIDPROC_QUEUE_LEASE_SECONDS": "6",
    "BIDPROC_QUEUE_STUCK_AFTER_SECONDS": "8",
    "BIDPROC_QUEUE_RECONCILE_EVERY_SECONDS": "2",
    "BIDPROC_QUEUE_WAIT_FIRST_DELAY_SECONDS": "0.5",
    "BIDPROC_QUEUE_WAIT_MAX_DELAY_SECONDS": "3",
    "BIDPROC_QUEUE_HEARTBEAT_TIMEOUT_SECONDS": "10",
}


@dataclass
class Services:
    redis: OwnRedis
    s3: TcpGate
    pg: OwnPostgres
    clamd: OwnClamd
    disk: SmallDisk | None

    @classmethod
    def start(cls, tmp: Path, disk: str | None) -> Services:
        """``disk``: the size of the tmpfs for the data directory (``"20m"``), or None for none."""
        return cls(OwnRedis(tmp / "redis"), TcpGate(tmp / "s3"), OwnPostgres(), OwnClamd(tmp / "clamd"),
                   SmallDisk(tmp / "disk", disk) if disk and can_mount() else None)

    def close(self) -> None:
        for stop in (self.redis.stop, self.s3.close, self.pg.close, self.clamd.stop,
                     *([self.disk.close] if self.disk else [])):
            try:
                stop()
            except Exception as exc:  # keep closing the others
                print(f"closing: {exc}")


@dataclass
class Run:
    results: list[workload.BidResult]
    checked: Checked
    faults: list[str]
    probes: Counter[str] = field(default_factory=Counter)  # answers to uploads made during an outage
    left: int = 0

    def lines(self) -> list[str]:
        refusals: Counter[str] = Counter()
        for r in self.results:
            refusals.update(r.refusals)
        got = sum(r.receipt for r in self.results)
        errors = [r.error for r in self.results if r.error]
        return [
            f"bids sent {len(self.results)}, receipts {got}, platform errors {len(errors)} {errors[:3]}",
            f"refusals seen by platforms (retried): {dict(refusals)}",
            f"uploads tried during outages: {dict(self.probes)}",
            "faults: " + "; ".join(self.faults),
            *self.checked.lines(),
        ]


def topology(tmp: Path, sv: Services, env: dict[str, str] | None = None) -> Topology:
    data = sv.disk.path / "data" if sv.disk else tmp / "data"
    return Topology(tmp / "run", redis_url=sv.redis.url, s3_endpoint=sv.s3.endpoint, database_url=sv.pg.url,
                    clamd_port=sv.clamd.port, data_dir=data, env={**FAST, **(env or {})})


def probe_upload(topo: Topology, key: str, tender: str, probes: Counter[str]) -> None:
    """An upload while storage is down must be refused before any receipt: record what it answered, and
    whether the bid then holds the file (it must not)."""
    with httpx.Client(base_url=topo.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        bid = http.post(f"/v1/tenders/{tender}/bids", json={"bidder": "Sonde"})
        if bid.status_code != 201:
            probes[f"new bid: {bid.status_code} {workload._code(bid)}"] += 1
            return
        r = http.put(f"/v1/bids/{bid.json()['id']}/files/offre.txt", content=b"x" * 300_000)
        code = workload._code(r)
        probes[f"{r.status_code} {code}"] += 1
        if r.status_code != 201:
            probes[f"then files in bid: {len(topo_files(topo, bid.json()['id']))}"] += 1


def topo_files(topo: Topology, bid_id: str) -> list[str]:
    from sqlalchemy import select

    from bidproc.metadata.models import DocumentRow

    with topo.rt.db.session() as s:
        return list(s.execute(select(DocumentRow.name).where(DocumentRow.bid_id == bid_id)).scalars())


@dataclass
class Traffic:
    """Bids streaming in from one platform (in a thread) while faults play; each fault noted with its time.

    Both scenarios end the same way (:meth:`collect`): every bid sent, the pipeline drained, the counts."""

    topo: Topology
    platform: workload.Platform
    tender: str
    log: Callable[[str], None]
    results: list[workload.BidResult] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    probes: Counter[str] = field(default_factory=Counter)
    _t0: float = 0.0
    _runner: threading.Thread | None = None

    @classmethod
    def begin(cls, topo: Topology, key: str, reference: str, plans: list[workload.BidPlan], *, concurrency: int,
              window: float, drain_seconds: float, log: Callable[[str], None]) -> Traffic:
        platform = workload.Platform(topo.base_url, key, give_up_seconds=drain_seconds)
        traffic = cls(topo, platform, platform.new_tender(reference), log)
        traffic._runner = threading.Thread(target=lambda: traffic.results.extend(
            workload.run(platform, traffic.tender, plans, concurrency=concurrency, window_seconds=window)))
        traffic._t0 = time.monotonic()
        traffic._runner.start()
        return traffic

    def note(self, what: str) -> None:
        self.faults.append(f"{time.monotonic() - self._t0:.0f}s {what}")
        self.log(self.faults[-1])

    def collect(self, drain_seconds: float) -> Run:
        assert self._runner is not None
        self._runner.join()
        self.note("all bids sent")
        left = wait_drained(self.topo.rt, drain_seconds)
        self.note(f"drained ({left} left)")
        # An undrained run is not checked at all: see Checked.undrained.
        checked = check(self.topo.rt, self.platform.shares) if left == 0 else Checked(undrained=left)
        return Run(self.results, checked, self.faults, self.probes, left)


@contextmanager
def running(tmp: Path, *, disk: str | None, env: dict[str, str] | None = None) -> Iterator[tuple[Services, Topology]]:
    """The run's own services and bidproc processes; their logs printed if the run fails, all closed after."""
    sv = Services.start(tmp, disk=disk)
    topo = topology(tmp, sv, env)
    try:
        yield sv, topo
    except BaseException:
        print(topo.logs())
        raise
    finally:
        topo.close()
        sv.close()


def chaos(tmp: Path, *, bids: int, files_per_bid: int, workers: int, window: float, outage: float,
          pg_outage: float, kills: int, drain_seconds: float, seed: int = 13,
          log: Callable[[str], None] = print) -> Run:
    rng = random.Random(seed)
    with running(tmp, disk=None) as (sv, topo):
        topo.start_api()
        for _ in range(workers):
            topo.start_worker()
        for w in topo.workers:
            topo.wait_ready(w)
        key = topo.key("platform-a")
        plans = workload.plan_bids(bids, files_per_bid, seed=seed, hostile_every=12)
        traffic = Traffic.begin(topo, key, f"CHAOS-{seed}-{time.time()}", plans, concurrency=6, window=window,
                                drain_seconds=drain_seconds, log=log)

        def down(name: str, stop: Callable[[], None], start: Callable[[], None], seconds: float,
                 probe: bool = False) -> None:
            began = time.monotonic()
            stop()
            traffic.note(f"{name} down for {seconds:.0f}s")
            if probe:
                probe_upload(topo, key, traffic.tender, traffic.probes)
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
            start()
            traffic.note(f"{name} back")

        def kill_one() -> None:
            victim = rng.choice(topo.live_workers())
            topo.kill_worker(victim)
            topo.start_worker()
            traffic.note(f"SIGKILL worker pid {victim.pid}, started another")

        plan: list[Callable[[], None]] = [
            kill_one,
            lambda: down("redis", sv.redis.stop, sv.redis.start, 3),
            lambda: down("S3 endpoint", sv.s3.stop, sv.s3.start, outage, probe=True),
            lambda: down("clamd", sv.clamd.stop, sv.clamd.start, outage),
            lambda: down("postgresql", sv.pg.stop, sv.pg.start, pg_outage, probe=True),
        ]
        plan += [kill_one] * (kills - 1)
        step = window / (len(plan) + 1)  # every fault while bids are still arriving
        for fault in plan:
            time.sleep(step)
            fault()
        return traffic.collect(drain_seconds)


def full_disk(tmp: Path, *, bids: int, files_per_bid: int, window: float, full_seconds: float,
              drain_seconds: float, disk_size: str = "20m", log: Callable[[str], None] = print) -> Run:
    """The local store on a small tmpfs, filled while bids arrive: uploads are refused
    (``503 storage.unavailable``), none half-accepted, and everything with a receipt completes.
    ``disk_size`` must hold every bid's objects (about 3x its files: files, sealed copies, reports)
    once the filler is removed, or the pipeline rightly waits for space until the drain runs out."""
    with running(tmp, disk=disk_size, env={"BIDPROC_STORAGE_BACKEND": "local"}) as (sv, topo):
        assert sv.disk is not None, "needs root to mount a tmpfs"
        topo.rt.sealer  # noqa: B018  (keys and the local CA exist before the disk fills)
        topo.start_api()
        topo.wait_ready(topo.start_worker())
        key = topo.key("platform-a")
        plans = workload.plan_bids(bids, files_per_bid, hostile_every=0, max_kb=512)
        traffic = Traffic.begin(topo, key, f"DISK-{time.time()}", plans, concurrency=4, window=window,
                                drain_seconds=drain_seconds, log=log)
        time.sleep(window / 4)
        sv.disk.fill()
        traffic.note(f"data disk full for {full_seconds:.0f}s")
        time.sleep(0.5)
        sv.disk.fill()  # again: what uploads aborted by the full disk have freed meanwhile
        probe_upload(topo, key, traffic.tender, traffic.probes)
        time.sleep(full_seconds)
        sv.disk.free()
        traffic.note("space freed")
        return traffic.collect(drain_seconds)
