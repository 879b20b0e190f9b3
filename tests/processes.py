"""``bidproc`` as a real process, as an operator runs it: started, waited for, stopped. No pytest here.

Shared by ``tests/foundation/upproc.py`` (``bidproc up``) and ``tests/faults/topology.py`` (``bidproc
serve`` and ``bidproc worker``), so both start, wait and stop their processes the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import ROOT

# Sets RLIMIT_AS (soft and hard, as `ulimit -v` does) then execs the command: no preexec_fn in a
# possibly threaded test process.
_LIMITED = ("import os, resource, sys; limit = int(sys.argv[1]); "
            "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); os.execv(sys.argv[2], sys.argv[2:])")


def with_address_space(limit: int, argv: list[str]) -> list[str]:
    return [sys.executable, "-c", _LIMITED, str(limit), *argv]


def spawn(args: list[str], env: dict[str, str], log: Path, address_space: int | None = None
          ) -> subprocess.Popen[bytes]:
    """``python -m bidproc.cli ARGS`` in a session of its own (so its sandboxes can be signalled with it),
    its output appended to ``log``."""
    argv = [sys.executable, "-m", "bidproc.cli", *args]
    with log.open("ab") as out:
        return subprocess.Popen(with_address_space(address_space, argv) if address_space else argv, env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path, timeout: float = 60) -> None:
    """Until ``/healthz`` answers 200; the log is the failure message if the process dies or never answers."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.1)
    raise RuntimeError(f"{base_url} not up after {timeout:.0f} s\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, grace: float = 20) -> None:
    """Signal the process's whole group, give it ``grace`` seconds to finish, then SIGKILL the group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        proc.wait(10)
