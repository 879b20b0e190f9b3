from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack, stack_fixture


@pytest.fixture
def stack(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings, redis_url: str,
          postgres_url: str) -> Iterator[Stack]:
    yield from stack_fixture(tmp_path, s3_endpoint, clamd_settings, redis_url, postgres_url)
from tests.pki.fixtures import pki  # noqa: E402, F401  (the test PKI, over loopback)
