"""pytest fixtures for the test PKI (import them into a conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pki import TestPKI, build_pki, serve
from tests.services import free_port


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPKI]:
    """The test PKI with its OCSP responder, CRLs and TSA live on a loopback port for the session."""
    port, dead_port = free_port(), free_port()  # nothing ever listens on dead_port
    built = build_pki(tmp_path_factory.mktemp("pki"), port, dead_port)
    with serve(built, port):
        yield built
