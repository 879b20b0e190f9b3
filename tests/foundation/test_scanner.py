"""The clamd adapter against a real clamd."""

from __future__ import annotations

import io
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bidproc.config import ClamdSettings
from bidproc.errors import BidprocError, Code
from bidproc.intake.scan import ClamdScanner
from tests.services import ROOT, free_port

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_concurrent_scans_do_not_mix_up_answers(clamd_settings: ClamdSettings) -> None:
    scanner = ClamdScanner(clamd_settings)
    payloads = [EICAR if i % 2 else b"clean %d " % i * 50_000 for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: scanner.scan_stream(io.BytesIO(p)), payloads))
    assert [r.infected for r in results] == [bool(i % 2) for i in range(24)]
    assert all(r.signature and r.signature.startswith("Eicar-Test-Signature") for r in results if r.infected)


def test_unreachable_clamd_is_scan_unavailable() -> None:
    scanner = ClamdScanner(ClamdSettings(port=free_port(), timeout_seconds=2))
    with pytest.raises(BidprocError) as err:
        scanner.scan_stream(io.BytesIO(b"x"))
    assert err.value.code is Code.SCAN_UNAVAILABLE


def test_content_beyond_clamd_limits_is_never_clean(tmp_path: Path) -> None:
    """Over StreamMaxLength: size.too_large; over MaxFileSize (AlertExceedsMax): scan.incomplete."""
    port, rundir = free_port(), tmp_path / "clamd"
    env = {**os.environ, "BIDPROC_CLAMD_STREAM_MAX": "2M", "BIDPROC_CLAMD_MAX_FILE": "1M"}
    subprocess.run([str(ROOT / "scripts/clamd.sh"), "start", str(port), str(rundir)], env=env, check=True,
                   capture_output=True)
    try:
        scanner = ClamdScanner(ClamdSettings(port=port, timeout_seconds=20))
        with pytest.raises(BidprocError) as err:
            scanner.scan_stream(io.BytesIO(os.urandom(6 << 20)))
        assert err.value.code is Code.SIZE_TOO_LARGE
        with pytest.raises(BidprocError) as err:
            scanner.scan_stream(io.BytesIO(b"a" * (1536 << 10)))
        assert err.value.code is Code.SCAN_INCOMPLETE
        assert scanner.scan_stream(io.BytesIO(b"small and clean")).clean
    finally:
        subprocess.run([str(ROOT / "scripts/clamd.sh"), "stop", str(rundir)], check=False)
