"""Retention dates: the rule per contract kind, and the conservative default while dates are unknown."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bidproc.archive.retention import ContractKind, RetentionPolicy
from bidproc.config import ArchiveSettings

RECEIVED = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=UTC)
S = ArchiveSettings()


def test_default_is_fifteen_years_from_the_receipt_in_whole_seconds() -> None:
    for kind in ContractKind:  # neither date known: the default, whatever the kind
        until, rule = RetentionPolicy(kind).retain_until(RECEIVED, S)
        assert until == datetime(2041, 3, 2, 10, 30, 15, tzinfo=UTC) and rule.startswith("default")


def test_bids_five_years_from_signature_works_ten_from_end_of_performance() -> None:
    until, rule = RetentionPolicy(contract_signed=date(2026, 9, 1)).retain_until(RECEIVED, S)
    assert until == datetime(2031, 9, 1, tzinfo=UTC) and "signature" in rule
    works = RetentionPolicy(ContractKind.WORKS, contract_signed=date(2026, 9, 1), performance_end=date(2029, 6, 30))
    assert works.retain_until(RECEIVED, S)[0] == datetime(2039, 6, 30, tzinfo=UTC)
    # A works contract whose end of performance is not known yet keeps the default, not 5 years.
    early = RetentionPolicy(ContractKind.WORKS, contract_signed=date(2026, 9, 1)).retain_until(RECEIVED, S)
    assert early[0].year == 2041


def test_29_february_never_gives_an_earlier_date() -> None:
    until, _ = RetentionPolicy(contract_signed=date(2028, 2, 29)).retain_until(RECEIVED, S)
    assert until == datetime(2033, 3, 1, tzinfo=UTC)
