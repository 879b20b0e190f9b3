from __future__ import annotations

import pytest

from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401
from tests.signature.signing import make_pdf, sign_pdf


@pytest.fixture(scope="session")
def pdf() -> bytes:
    return make_pdf()


@pytest.fixture(scope="session")
def signed(pki: TestPKI, pdf: bytes) -> dict[str, bytes]:  # noqa: F811
    """Each signed sample once per session: level -> PDF, plus one per special signer."""
    out = {level: sign_pdf(pdf, pki, level=level) for level in ("B-B", "B-T", "B-LT", "B-LTA")}
    for label in ("expired", "revoked-before", "revoked-after", "rogue-signer", "ocsp-down"):
        out[label] = sign_pdf(pdf, pki, label=label, level="B-T")
    out["revoked-after-B-B"] = sign_pdf(pdf, pki, label="revoked-after", level="B-B")
    return out
