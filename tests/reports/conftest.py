from __future__ import annotations

from collections.abc import Iterator

import pytest

from bidproc.signature.reports import Subject
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401
from tests.reports.samples import Sample, cades_samples, pades_samples, xades_samples
from tests.xades.pki import PKIServer


@pytest.fixture(scope="session")
def xades_server() -> Iterator[PKIServer]:
    server = PKIServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def samples(pki: TestPKI, xades_server: PKIServer) -> dict[str, Sample]:  # noqa: F811
    return {**pades_samples(pki), **cades_samples(pki), **xades_samples(xades_server.pki)}


@pytest.fixture(scope="session")
def subjects(samples: dict[str, Sample]) -> dict[str, Subject]:
    """Every sample, validated once: name -> the report's input."""
    return {name: sample.validate() for name, sample in samples.items()}
