"""How long an evidence package is kept: the date its objects' COMPLIANCE retention runs until.

French public procurement (Code de la commande publique, R2184-12/13; archives' DUA): the bids of a
tender are kept 5 years from the signature of the contract; for works contracts, 10 years from the
end of performance (the builders' ten-year liability). At archive time neither date is known, so the
package gets a conservative default (``archive.default_retention_years`` from the receipt, 15 by
default): long enough to cover a contract signed and performed within 5 years of the deposit.
COMPLIANCE retention can be extended but never shortened, so the default errs long: a package kept
a few years too long is a cost, one deleted too early is a lost proof.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from bidproc.config import ArchiveSettings


class ContractKind(StrEnum):
    SUPPLIES_SERVICES = "supplies_services"
    WORKS = "works"


@dataclass(frozen=True)
class RetentionPolicy:
    """A tender's retention facts; absent dates mean "not known yet" and give the default."""

    kind: ContractKind = ContractKind.SUPPLIES_SERVICES
    contract_signed: date | None = None
    performance_end: date | None = None

    def term(self, received_at: datetime, settings: ArchiveSettings) -> Term:
        """Which rule applies: its name, its duration and the moment it counts from."""
        if self.kind is ContractKind.WORKS and self.performance_end is not None:
            return Term("works", settings.works_retention_years, _midnight(self.performance_end),
                        f"the end of performance {self.performance_end}")
        if self.kind is ContractKind.SUPPLIES_SERVICES and self.contract_signed is not None:
            return Term("bids", settings.bid_retention_years, _midnight(self.contract_signed),
                        f"contract signature {self.contract_signed}")
        return Term("default", settings.default_retention_years, received_at,
                    "the receipt (contract dates not known at archive time)")

    def retain_until(self, received_at: datetime, settings: ArchiveSettings) -> tuple[datetime, str]:
        """The retention date and the rule that gave it (written into the manifest)."""
        term = self.term(received_at, settings)
        # Whole seconds: S3 retention dates carry no fraction, and a later read must compare equal.
        until = _years_after(term.start, term.years).astimezone(UTC).replace(microsecond=0)
        return until, f"{term.name}: {term.years} years from {term.start_text}"


@dataclass(frozen=True)
class Term:
    name: str  # "works", "bids" or "default"
    years: int
    start: datetime
    start_text: str


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _years_after(start: datetime, years: int) -> datetime:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February into a common year: the day after, never earlier
        return start.replace(year=start.year + years, month=3, day=1)


def policy_of(contract: dict[str, Any] | None) -> RetentionPolicy:
    """A tender's stored ``contract`` (``tenders.contract``) as its policy; absent: nothing known yet."""
    if not contract:
        return RetentionPolicy()

    def day(key: str) -> date | None:
        value = contract.get(key)
        return date.fromisoformat(value) if value else None

    return RetentionPolicy(ContractKind(contract.get("kind", ContractKind.SUPPLIES_SERVICES.value)),
                           day("signed"), day("performance_end"))


def stored_form(policy: RetentionPolicy) -> dict[str, Any]:
    return {"kind": policy.kind.value,
            "signed": policy.contract_signed.isoformat() if policy.contract_signed else None,
            "performance_end": policy.performance_end.isoformat() if policy.performance_end else None}
