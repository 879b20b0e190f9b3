from __future__ import annotations

from collections.abc import Iterator

import pytest

from bidproc.signature.policy import ValidationPolicy
from tests.xades.pki import LoopbackPKI, PKIServer


@pytest.fixture(scope="session")
def pki_server() -> Iterator[PKIServer]:
    server = PKIServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pki(pki_server: PKIServer) -> LoopbackPKI:
    return pki_server.pki


@pytest.fixture(scope="session")
def policy(pki: LoopbackPKI) -> ValidationPolicy:
    """Online validation (CRLs fetched from the loopback server), trusting only the test root."""
    return ValidationPolicy(trust_anchors=(pki.root.der,), fetch_timeout_seconds=5)
