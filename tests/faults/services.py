"""Services of a fault run's own, which it may kill and restart without touching anyone else's.

No pytest here: ``bench/faults.py`` and ``bench/rush.py`` use these too. Each service is started on a
free loopback port; ``stop()`` makes it refuse connections, ``start()`` brings it back on the same
port with the same data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.services import ROOT, free_port, wait_port

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/bin"))


class OwnRedis:
    """A redis-server of our own (never the machine's shared one on 6379), nothing persisted: a restart
    loses every queued message, the worst case for the pipeline."""

    def __init__(self, rundir: Path) -> None:
        self.port, self.pidfile = free_port(), rundir / "redis.pid"
        rundir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.pidfile)], check=True,
                       capture_output=True)
        if not wait_port(self.port, 20):
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text())
            with_signal(pid, signal.SIGKILL)
            wait_gone(pid)
            self.pidfile.unlink(missing_ok=True)


class TcpGate:
    """The S3 endpoint as clients see it: a TCP relay (its own process) in front of moto_server.

    moto keeps objects in memory, so killing moto itself would lose what was stored before the outage;
    killing this relay makes the endpoint refuse connections (and cuts those open) exactly as a dead
    S3 endpoint does, and restarting it on the same port brings the same objects back.
    """

    def __init__(self, rundir: Path) -> None:
        rundir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        self._moto_port, self.port = free_port(), free_port()
        self._log = (rundir / "moto.log").open("wb")
        self._moto = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self._moto_port)], stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_port(self._moto_port, 60):
            raise RuntimeError("moto_server did not start")
        self._relay: subprocess.Popen[bytes] | None = None
        self.endpoint = f"127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self._relay = subprocess.Popen([sys.executable, "-m", "tests.faults.relay", str(self.port),
                                        str(self._moto_port)], cwd=ROOT, start_new_session=True)
        if not wait_port(self.port, 20):
            raise RuntimeError("relay did not start")

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.kill()
            self._relay.wait(10)
            self._relay = None

    def close(self) -> None:
        self.stop()
        self._moto.terminate()
        self._moto.wait(10)
        self._log.close()


class OwnClamd:
    def __init__(self, rundir: Path) -> None:
        self.port, self.rundir, self.script = free_port(), rundir, str(ROOT / "scripts/clamd.sh")
        self.start()

    def start(self) -> None:
        subprocess.run([self.script, "start", str(self.port), str(self.rundir)], check=True, capture_output=True,
                       timeout=120)

    def stop(self) -> None:
        pidfile = self.rundir / "clamd.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        subprocess.run([self.script, "stop", str(self.rundir)], check=False)
        if pid is not None:
            wait_gone(pid)
            pidfile.unlink(missing_ok=True)


class OwnPostgres:
    """A PostgreSQL cluster of our own (initdb on a temporary directory, run as the postgres user, on a
    free port): stopping it touches no one else's database."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bidproc-pg-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self.start()

    def _run(self, *argv: str) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, cwd="/tmp")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c max_connections=200")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o", opts,
                  "-w", "start")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SmallDisk:
    """A tmpfs of ``size`` mounted on ``path`` (root only); ``fill()`` takes every free byte."""

    def __init__(self, path: Path, size: str = "20m") -> None:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                       capture_output=True)
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        # Unbuffered: a buffered file would flush on close and raise ENOSPC out of the ``with`` (seen once)
        with self._filler.open("ab", buffering=0) as fh:
            block = b"\0" * (256 << 10)
            try:
                while fh.write(block):
                    pass
            except OSError:
                pass
        # the last partial block: take the remainder byte-exactly
        with self._filler.open("ab", buffering=0) as fh:
            try:
                while fh.write(b"\0" * 4096):
                    pass
            except OSError:
                pass

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


def with_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, seconds: float = 10) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None
