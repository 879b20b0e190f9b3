"""clamd stopped mid-run: files wait with scan.unavailable (an exception, never a verdict), then pass."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bidproc.config import ClamdSettings
from bidproc.domain import Verdict
from bidproc.errors import BidprocError, Code
from bidproc.intake.inspect import inspect
from bidproc.intake.scan import ClamdScanner
from tests.intake.builders import pdf, zip_of
from tests.services import ROOT, free_port, unavailable

SCRIPT = str(ROOT / "scripts" / "clamd.sh")


class OwnClamd:
    """A second clamd, ours alone, so stopping it does not disturb the session's."""

    def __init__(self, rundir: Path) -> None:
        self.rundir = rundir
        self.port = free_port()

    def start(self) -> None:
        proc = subprocess.run(
            [SCRIPT, "start", str(self.port), str(self.rundir)], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            unavailable(f"clamd did not start: {proc.stderr.strip()}")

    def stop(self) -> None:
        pid_file = self.rundir / "clamd.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else ""
        subprocess.run([SCRIPT, "stop", str(self.rundir)], check=False)
        # wait for that process (ours, by its pid) to be gone, so the port is really closed
        for _ in range(100):
            if not pid or not Path(f"/proc/{pid}").exists():
                break
            subprocess.run(["sleep", "0.1"], check=False)
        pid_file.unlink(missing_ok=True)


@pytest.fixture()
def own_clamd(tmp_path: Path) -> Iterator[OwnClamd]:
    if not shutil.which("clamd") and not Path("/usr/sbin/clamd").exists():
        unavailable("clamd")
    clamd = OwnClamd(tmp_path / "clamd")
    clamd.start()
    yield clamd
    clamd.stop()


def test_clamd_stopped_mid_run_then_back(own_clamd: OwnClamd) -> None:
    scanner = ClamdScanner(ClamdSettings(host="127.0.0.1", port=own_clamd.port, timeout_seconds=10))
    files = {"a.pdf": pdf(), "b.zip": zip_of([("c.txt", b"some text\n")]), "d.txt": b"more text\n"}

    def run(name: str) -> Verdict:
        return inspect(name, lambda: io.BytesIO(files[name]), scanner).verdict

    assert run("a.pdf") is Verdict.ACCEPTED
    own_clamd.stop()
    for name in files:  # every file waits: an exception for the pipeline to retry, not a verdict
        with pytest.raises(BidprocError) as caught:
            run(name)
        assert caught.value.code is Code.SCAN_UNAVAILABLE
    own_clamd.start()
    assert [run(name) for name in files] == [Verdict.ACCEPTED] * 3
