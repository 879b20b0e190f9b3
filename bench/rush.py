"""The deadline rush: simulated platforms submit many bids of 10 files within a time window.

    .venv/bin/python bench/rush.py [--bids 100] [--files 10] [--window 60] [--platforms 8]
                                   [--modes embedded,production] [--workers 1,2]
    .venv/bin/python bench/rush.py --bids 1000 --window 600          # the real rush (issue 13)

Each bid has mixed files (plain text of 1 KB to 256 KB, PDFs, a signed PDF from the shared corpus in
every third bid when ``$BIDPROC_TEST_CORPUS`` or ../shared/corpus is there, and every 25th bid carries
the EICAR test file or a zip bomb). Runs against ``bidproc up`` (embedded: SQLite, local store,
in-process workers) and against the production topology (``bidproc serve`` plus separate ``bidproc
worker`` processes on Redis, an S3 endpoint (moto_server), PostgreSQL, clamd: all started for the run,
on free ports), once per worker count. Prints per run: p50/p95/p99 submit-to-receipt latency (the
submit request), the pipeline's backlog over time (``bidproc_bids`` from ``/metrics``), throughput
(bids finished per second, per worker process, and bids each worker finished), and each process's
peak RSS (VmHWM; the intake sandboxes are separate child processes, not included). Targets on 2
cores (issue 13): p99 receipt < 1 s while the pipeline drains; throughput nearly doubles from 1 to 2
workers. Needs root (initdb as postgres) for the production topology.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import closing, section  # noqa: E402
from tests.faults import workload  # noqa: E402
from tests.faults.services import OwnClamd, OwnPostgres, OwnRedis, TcpGate  # noqa: E402
from tests.faults.topology import Topology  # noqa: E402
from tests.processes import spawn, stop, wait_healthy  # noqa: E402
from tests.services import free_port  # noqa: E402

PENDING = ("submitted", "processing")
DONE = ("processed", "quarantined", "failed", "late")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each named process with its live descendants and reaped children: the
    intake sandboxes, clamd's threads, PostgreSQL's backends all count to what started them."""
    table: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)

    named = set(roots.values())  # the bench's own children (the API, workers, moto) count as themselves

    def tree(pid: int) -> float:
        return table.get(pid, (0, 0.0))[1] + sum(tree(c) for c in children.get(pid, []) if c not in named)

    return {name: tree(pid) for name, pid in roots.items()}


def pid_in(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return -1  # not running: counts nothing


def bids_by_status(text: str) -> dict[str, int]:
    return {m[1]: int(float(m[2])) for m in re.finditer(r'^bidproc_bids\{status="([^"]+)"\} (\S+)$', text, re.M)}


class Backlog(threading.Thread):
    """Samples ``bidproc_bids`` from /metrics: (seconds since start, bids waiting, bids done)."""

    def __init__(self, base_url: str, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.url, self.every, self.samples = f"{base_url}/metrics", every, list[tuple[float, int, int]]()
        self.halt, self.t0 = threading.Event(), time.monotonic()

    def latest(self) -> tuple[int, int]:
        try:
            counts = bids_by_status(httpx.get(self.url, timeout=10).text)
        except httpx.HTTPError:
            return -1, -1
        return sum(counts.get(s, 0) for s in PENDING), sum(counts.get(s, 0) for s in DONE)

    def run(self) -> None:
        while not self.halt.wait(self.every):
            waiting, done = self.latest()
            self.samples.append((time.monotonic() - self.t0, waiting, done))


@dataclass
class Figures:
    name: str
    workers: int
    receipts: int = 0
    latencies: list[float] = field(default_factory=list)
    sent_seconds: float = 0.0
    drained_seconds: float = 0.0
    done: int = 0
    backlog: list[tuple[float, int, int]] = field(default_factory=list)
    per_worker: list[int] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each process (tree) during the run
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Bids finished per second while bids were waiting (the pipeline's capacity, not the arrival rate)."""
        busy = [(t, d) for t, w, d in self.backlog if w > 0] + [(self.drained_seconds, self.done)]
        (t0, d0), (t1, d1) = busy[0], busy[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else float("nan")

    def lines(self) -> list[str]:
        lat = self.latencies
        step = max(1, len(self.backlog) // 15)
        curve = ", ".join(f"{t:.0f}s:{w}/{d}" for t, w, d in self.backlog[::step])
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in self.rss.items())
        return [
            f"receipts {self.receipts} (errors {len(self.errors)} {self.errors[:2]}); all sent after"
            f" {self.sent_seconds:.1f} s, all final after {self.drained_seconds:.1f} s ({self.done} bids)",
            f"submit-to-receipt latency: p50 {percentile(lat, 50) * 1000:.0f} ms, p95 {percentile(lat, 95) * 1000:.0f}"
            f" ms, p99 {percentile(lat, 99) * 1000:.0f} ms, max {max(lat, default=0) * 1000:.0f} ms"
            f" (p99 < 1 s: {'yes' if percentile(lat, 99) < 1 else 'NO'})",
            f"throughput while bids waited {self.throughput:.2f} bids/s, {self.throughput / max(1, self.workers):.2f}"
            f" per worker process ({self.workers}); overall {self.done / self.drained_seconds:.2f} bids/s;"
            f" bids finished by each worker: {self.per_worker}",
            f"backlog over time (s: bids waiting/finished): {curve}",
            f"peak RSS: {rss}",
            self.cpu_line(),
        ]

    def cpu_line(self) -> str:
        """Where the machine's time went: what bounds the throughput of any number of workers on N cores
        is the whole run's CPU time per bid (N / that), not the workers' alone."""
        if not self.cpu or not self.done:
            return "CPU: not measured"
        if self.done < self.receipts:
            return (f"CPU: {sum(self.cpu.values()):.0f} s over the run; not per bid, the pipeline had not drained"
                    f" ({self.done} of {self.receipts} final)")
        total = sum(self.cpu.values())
        parts = ", ".join(f"{k} {v / self.done * 1000:.0f}" for k, v in sorted(self.cpu.items(), key=lambda kv: -kv[1]))
        return (f"CPU ms per finished bid: {parts}; all {total / self.done * 1000:.0f} ms per bid, i.e. at most"
                f" {2 * self.done / total:.2f} bids/s on 2 whole cores; the run got {total / self.drained_seconds:.2f}"
                f" cores on average (load average at the end {os.getloadavg()[0]:.1f})")


def signed_pdfs() -> tuple[bytes, ...]:
    corpus = Path(os.environ.get("BIDPROC_TEST_CORPUS") or ROOT.parent / "shared" / "corpus")
    return tuple(p.read_bytes() for p in sorted((corpus / "pades").glob("*.pdf")))


def run_platforms(base_url: str, keys: list[str], name: str, plans: list[workload.BidPlan],
                  window: float) -> list[workload.BidResult]:
    """Each simulated platform is a tenant of its own (its own API key, its own tender), as on a real
    service: per-platform quotas (``api.tenant_uploads_per_minute``) apply to each, not to the whole rush.
    Platform i sends bids i, i+n, i+2n, ... at their planned times, two at a time."""
    n = len(keys)
    slices: list[list[workload.BidResult]] = [[] for _ in keys]

    def platform_run(i: int) -> None:
        platform = workload.Platform(base_url, keys[i], give_up_seconds=60)
        tender = platform.new_tender(f"RUSH-{name}-{i}-{time.time()}")
        slices[i] = workload.run(platform, tender, plans[i::n], concurrency=2, window_seconds=window)

    threads = [threading.Thread(target=platform_run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for part in slices for r in part]


def measure(fig: Figures, base_url: str, keys: list[str], plans: list[workload.BidPlan], args: argparse.Namespace,
            drain_seconds: float, processes: dict[str, int] | None = None) -> None:
    roots = {**(processes or {}), "bench client": os.getpid()}
    before = cpu_seconds(roots)
    backlog = Backlog(base_url)
    backlog.start()
    start = time.monotonic()
    results = run_platforms(base_url, keys, fig.name, plans, args.window)
    fig.sent_seconds = time.monotonic() - start
    fig.receipts = sum(r.receipt for r in results)
    fig.latencies = [r.submit_seconds for r in results if r.receipt]
    fig.errors = [r.error for r in results if r.error]
    end = time.monotonic() + drain_seconds
    while time.monotonic() < end:
        waiting, done = backlog.latest()
        if waiting == 0 and done >= fig.receipts:
            break
        time.sleep(0.5)
    fig.drained_seconds, fig.done = time.monotonic() - start, done
    after = cpu_seconds(roots)
    fig.cpu = {k: after[k] - before[k] for k in roots}
    backlog.halt.set()
    fig.backlog = backlog.samples


def finished_by(log: Path) -> int:
    """Bids this process brought to a final status: a redelivered message for a bid already final logs the
    status with no stage run (``processed `` and nothing after), and is not counted; each bid once."""
    return len(set(re.findall(r"bid (\S+): (?:processed|quarantined) [a-z]", log.read_text(errors="replace"))))


def embedded(tmp: Path, plans: list[workload.BidPlan], args: argparse.Namespace) -> Figures:
    fig = Figures("bidproc up (embedded: SQLite, local store, in-process workers)", 1)
    clamd = OwnClamd(tmp / "clamd")
    data, port = tmp / "up", free_port()
    env = {**os.environ, "BIDPROC_CLAMD_PORT": str(clamd.port), "BIDPROC_DATABASE_URL": "",
           "BIDPROC_STORAGE_BACKEND": "local", "BIDPROC_QUEUE_BACKEND": "embedded"}
    cli = [sys.executable, "-m", "bidproc.cli"]
    keys = [subprocess.run([*cli, "apikey", "create", "--tenant", f"platform-{i}", "--data-dir", str(data)],
                           env=env, capture_output=True, text=True, check=True).stdout.strip().split()[-1]
            for i in range(args.platforms)]
    up = spawn(["up", "--port", str(port), "--data-dir", str(data)], env, tmp / "up.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(up, base, tmp / "up.log")
        measure(fig, base, keys, plans, args, args.drain, {"up": up.pid, "clamd": pid_in(clamd.rundir / "clamd.pid")})
        fig.rss = {f"up pid {up.pid}": peak_rss_mb(up.pid)}
        fig.per_worker = [finished_by(tmp / "up.log")]
    finally:
        stop(up, grace=60)
        clamd.stop()
    return fig


def production(tmp: Path, plans: list[workload.BidPlan], args: argparse.Namespace, workers: int,
               services: tuple[OwnRedis, TcpGate, OwnPostgres, OwnClamd]) -> Figures:
    import psycopg

    redis, s3, pg, clamd = services
    fig = Figures(f"production: serve + {workers} worker process(es) ({args.threads or 'default'} threads each),"
                  " Redis, S3, PostgreSQL", workers)
    db = f"rush_{workers}_{int(time.time())}"
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    topo = Topology(tmp / f"w{workers}", redis_url=redis.url, s3_endpoint=s3.endpoint, clamd_port=clamd.port,
                    database_url=pg.url.rsplit("/", 1)[0] + f"/{db}")
    try:
        topo.start_api()
        for _ in range(workers):
            topo.start_worker(args.threads)
        for w in topo.workers:
            topo.wait_ready(w)
        assert topo.api is not None
        measure(fig, topo.base_url, [topo.key(f"platform-{i}") for i in range(args.platforms)], plans, args,
                args.drain,
                {"api": topo.api.pid, **{f"worker {i}": w.pid for i, w in enumerate(topo.workers)},
                 "clamd": pid_in(clamd.rundir / "clamd.pid"), "postgres": pid_in(pg.dir / "data" / "postmaster.pid"),
                 "redis": pid_in(redis.pidfile), "s3 (moto)": s3._moto.pid,
                 "s3 relay": s3._relay.pid if s3._relay else -1})
        assert topo.api is not None
        fig.rss = {"api": peak_rss_mb(topo.api.pid)} | {
            f"worker {i}": peak_rss_mb(w.pid) for i, w in enumerate(topo.workers)}
        fig.per_worker = [finished_by(topo.tmp / f"worker-{i}.log") for i in range(workers)]
    finally:
        topo.close()
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=int, default=100)
    parser.add_argument("--files", type=int, default=10, help="files per bid")
    parser.add_argument("--window", type=float, default=60, help="seconds over which the bids arrive")
    parser.add_argument("--platforms", type=int, default=8,
                        help="simulated platforms, each a tenant with its own key, sending two bids at a time")
    parser.add_argument("--modes", default="embedded,production")
    parser.add_argument("--workers", default="1,2", help="worker process counts for the production topology")
    parser.add_argument("--threads", type=int, default=None, help="threads per worker (default: queue.worker_threads)")
    parser.add_argument("--drain", type=float, default=1800, help="seconds to wait for the pipeline to drain")
    args = parser.parse_args()
    plans = workload.plan_bids(args.bids, args.files, signed=signed_pdfs())
    print(f"{args.bids} bids of {args.files} files ({sum(len(p.files) for p in plans)} files,"
          f" {sum(len(d) for p in plans for _, d in p.files) / 1e6:.1f} MB, {sum(p.hostile for p in plans)} hostile)"
          f" within {args.window:.0f} s from {args.platforms} platforms", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bidproc-rush-"))
    figures = []
    if "embedded" in args.modes:
        figures.append(embedded(tmp / "embedded", plans, args))
        section(figures[-1].name, figures[-1].lines())
    if "production" in args.modes:
        services = (OwnRedis(tmp / "redis"), TcpGate(tmp / "s3"), OwnPostgres(), OwnClamd(tmp / "clamd"))
        try:
            for n in (int(w) for w in args.workers.split(",")):
                figures.append(production(tmp, plans, args, n, services))
                section(figures[-1].name, figures[-1].lines())
        finally:
            services[0].stop()
            services[1].close()
            services[2].close()
            services[3].stop()
    prod = {f.workers: f.throughput for f in figures if f.name.startswith("production")}
    if 1 in prod and 2 in prod:
        closing(f"throughput 2 workers / 1 worker: {prod[2] / prod[1]:.2f}x (target: nearly 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
