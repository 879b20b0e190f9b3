from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import IO

import pytest

from bidproc.config import ClamdSettings
from bidproc.intake.inspect import FileVerdict, IntakeLimits, inspect
from bidproc.intake.scan import ClamdScanner, ScanResult


class RecordingScanner:
    """The real clamd scanner, plus a list of the SHA-256 of every stream it was given (not a mock)."""

    def __init__(self, inner: ClamdScanner) -> None:
        self.inner = inner
        self.scanned: list[str] = []

    def scan_stream(self, stream: IO[bytes]) -> ScanResult:
        data = stream.read()
        self.scanned.append(hashlib.sha256(data).hexdigest())
        return self.inner.scan_stream(io.BytesIO(data))

    def ping(self) -> None:
        self.inner.ping()


@pytest.fixture(scope="session")
def scanner(clamd_settings: ClamdSettings) -> ClamdScanner:
    return ClamdScanner(clamd_settings)


@pytest.fixture()
def recording(scanner: ClamdScanner) -> RecordingScanner:
    return RecordingScanner(scanner)


Check = Callable[..., FileVerdict]


@pytest.fixture()
def check(scanner: ClamdScanner) -> Check:
    def run(name: str, data: bytes, limits: IntakeLimits | None = None, using: object = None) -> FileVerdict:
        return inspect(name, lambda: io.BytesIO(data), using or scanner, limits or IntakeLimits())  # type: ignore[arg-type]

    return run
