"""The shared EN 319 102-1 decision step (bidproc.signature.decision) and the caller's validation time.

The B-LT question ("does the signature's own data validate its chain?") is answered without a second
certvalidator run when the main validation already proves it: these tests check that the shortcut is
taken where it may be, not taken where it may not, and gives exactly the report of the full run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bidproc.signature import decision
from bidproc.signature.expiry import validation_data_gap
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, ValidationReport
from bidproc.signature.validate import validate_files
from tests.pki import TestPKI
from tests.signature.cms_craft import add_signed_data_revinfo
from tests.signature.signing import fetch_crl, fetch_ocsp, make_pdf, sign_cms, sign_pdf

BID = b"Offre: lot 2, 41 000 EUR HT"


@pytest.fixture(scope="module")
def files(pki: TestPKI) -> dict[str, bytes]:
    p7m = sign_cms(BID, pki, detached=False)
    fetched = datetime.now(UTC)
    ocsp, crl_root = fetch_ocsp(pki, "signer", fetched), fetch_crl(pki, "root", fetched)
    return {
        "offre.pdf": sign_pdf(make_pdf("Offre de prix"), pki, level="B-LT"),
        "offre.p7m": add_signed_data_revinfo(p7m, [ocsp], [crl_root]),
        "partial.p7m": add_signed_data_revinfo(p7m, [ocsp]),  # the issuing CA's and the TSA's status missing
        "ocsp": ocsp,
        "crl-root": crl_root,
    }


@pytest.fixture(scope="module")
def now(files: dict[str, bytes]) -> datetime:
    """One validation time for the module, just after its files were signed (their OCSP answers are fresh)."""
    return datetime.now(UTC)


@pytest.fixture
def gap_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each call of the second certvalidator run (the real one runs: this only counts)."""
    calls: list[Any] = []

    async def counted(*args: Any, **kwargs: Any) -> str | None:
        calls.append(args)
        return await validation_data_gap(*args, **kwargs)

    monkeypatch.setattr(decision, "validation_data_gap", counted)
    return calls


def _validate(name: str, data: bytes, policy: ValidationPolicy, now: datetime) -> ValidationReport:
    return validate_files({name: data}, policy, now)[name]


@pytest.mark.parametrize("name", ["offre.pdf", "offre.p7m"])
def test_own_data_proven_by_the_main_validation_gives_the_full_runs_report(
    pki: TestPKI,
    files: dict[str, bytes],
    now: datetime,
    gap_runs: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), offline=True)
    fast = _validate(name, files[name], policy, now)
    assert [(s.indication, s.level) for s in fast.signatures] == [(Indication.TOTAL_PASSED, Level.B_LT)]
    assert gap_runs == []  # offline, own data only, chain valid throughout: nothing left to ask
    never: Callable[..., bool] = lambda *_args: False  # noqa: E731
    monkeypatch.setattr(decision, "_proven_by_main", never)
    full = _validate(name, files[name], policy, now)
    assert len(gap_runs) == 1
    assert full == fast


def test_caller_given_data_always_asks_the_own_data_question(
    pki: TestPKI, files: dict[str, bytes], now: datetime, gap_runs: list[Any]
) -> None:
    """The caller's root CRL completes the chain: the signature passes, but its own data does not (B-T)."""
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), offline=True, extra_crls=(files["crl-root"],))
    report = _validate("partial.p7m", files["partial.p7m"], policy, now)
    sig = report.signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_T)
    assert any(w.startswith("signature.validation_data_incomplete") for w in sig.warnings)
    assert len(gap_runs) == 1


def test_the_validation_time_is_the_callers(pki: TestPKI, files: dict[str, bytes], now: datetime) -> None:
    """B-B without a proof of existence: the best signature time is the validation time (EN 319 102-1
    §5.6.2.1), and that time is the one the caller passed, for every format."""
    later = now + timedelta(minutes=3)
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), offline=True)
    bb = sign_cms(BID, pki, detached=False, timestamp=False)
    pdf = sign_pdf(make_pdf("Offre"), pki, level="B-B")
    for name, data in (("bb.p7m", bb), ("bb.pdf", pdf)):
        sig = _validate(name, data, policy, later).signatures[0]
        assert sig.level is Level.B_B and sig.best_signature_time == later, name
