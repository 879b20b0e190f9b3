"""The verdict on one signature, as ETSI EN 319 102-1 / TS 119 102-2 name things.

Modelled on pyhanko's ``sign/ades/report.py`` (outcomes are enums) and ``sign/validation/status.py``
(verdicts are frozen dataclasses). This is the contract the JSON report of ``bidproc verify`` and the
pipeline's stored reports follow (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any


class SignatureFormat(StrEnum):
    PADES = "PAdES"
    CADES = "CAdES"
    XADES = "XAdES"


class Level(StrEnum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    """EN 319 102-1 clause 5.1.3 sub-indications."""

    # with TOTAL_FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    # with INDETERMINATE
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    POLICY_PROCESSING_ERROR = "POLICY_PROCESSING_ERROR"
    SIGNATURE_POLICY_NOT_AVAILABLE = "SIGNATURE_POLICY_NOT_AVAILABLE"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    REVOCATION_OUT_OF_BOUNDS_NO_POE = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    GENERIC = "GENERIC"


class Qualification(StrEnum):
    """TS 119 615 / ETSI TS 119 172-4 outcome of the qualified-status determination."""

    QESIG = "QESig"
    QESEAL = "QESeal"
    ADESIG_QC = "AdESig-QC"
    ADESEAL_QC = "AdESeal-QC"
    ADESIG = "AdESig"
    ADESEAL = "AdESeal"
    NA = "NA"


class RuleOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Signer:
    subject: str
    common_name: str | None = None
    organisation: str | None = None
    serial_number: str | None = None  # the subject's serialNumber attribute (e.g. an id number)
    issuer: str | None = None
    certificate_sha256: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    # The signer certificate itself (DER), for the qualification step; left out of the JSON report.
    certificate_der: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TimestampInfo:
    kind: str  # "signature" | "document" | "archive" | "content" | "deposit"
    time: datetime
    tsa: str | None = None
    valid: bool = False
    detail: str | None = None
    # The TSA certificate (DER) when the validator reports it; left out of the JSON report.
    tsa_certificate: bytes | None = field(default=None, repr=False, compare=False)
    qualified: bool | None = None  # issued under a granted QTST service of an EU trusted list (None: not assessed)


@dataclass(frozen=True)
class Modification:
    """Something a later revision of a PDF did, and whether the signer's permissions allowed it."""

    revision: int
    # form_filling | annotation | signature | page_added | page_removed | content_changed | other |
    # signature_dictionary (a signature's dictionary redefined after signing) |
    # unparsed_data (bytes after the last revision a strict parser reads)
    kind: str
    allowed: bool
    detail: str = ""


@dataclass(frozen=True)
class FrenchRuleCheck:
    """Arrêté of 22 March 2019: the points a buyer must check on each signature."""

    format: RuleOutcome
    certificate_valid_at_signing_time: RuleOutcome
    integrity: RuleOutcome
    signer_identity: RuleOutcome
    certificate_category: RuleOutcome = RuleOutcome.NOT_CHECKED
    failed: tuple[str, ...] = ()
    details: tuple[str, ...] = ()  # each failed or unchecked point, in words

    @property
    def compliant(self) -> bool:
        """Every point checked and passed (``bottom_line`` only says that none failed)."""
        return not self.failed and all(
            o is RuleOutcome.PASSED
            for o in (
                self.format,
                self.certificate_valid_at_signing_time,
                self.integrity,
                self.signer_identity,
                self.certificate_category,
            )
        )

    @property
    def bottom_line(self) -> bool:
        return not self.failed and RuleOutcome.FAILED not in {
            self.format,
            self.certificate_valid_at_signing_time,
            self.integrity,
            self.signer_identity,
            self.certificate_category,
        }


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature or document timestamp."""

    file: str
    format: SignatureFormat
    indication: Indication
    subindication: SubIndication | None = None
    level: Level | None = None
    signature_id: str | None = None  # field name (PAdES), signature Id (XAdES), index (CAdES)
    signer: Signer | None = None
    qualification: Qualification = Qualification.NA
    signing_time: datetime | None = None  # the time the signer claims
    best_signature_time: datetime | None = None  # the earliest proof of existence
    timestamps: tuple[TimestampInfo, ...] = ()
    modifications: tuple[Modification, ...] = ()
    signed_data: tuple[str, ...] = ()  # what was actually signed (names, references)
    french_rule: FrenchRuleCheck | None = None
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    qualification_details: tuple[str, ...] = ()  # on what basis ``qualification`` was decided, in words

    @property
    def bottom_line(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(asdict(self))
        # Certificates stay out of the JSON contract (they are bytes, and large).
        if out.get("signer"):
            out["signer"].pop("certificate_der", None)
        for stamp in out.get("timestamps", ()):
            stamp.pop("tsa_certificate", None)
        if self.french_rule is not None:
            out["french_rule"]["compliant"] = self.french_rule.compliant
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class ValidationReport:
    """Every signature found in one file (or one bid), plus file-level problems."""

    subject: str
    signatures: tuple[SignatureReport, ...] = field(default_factory=tuple)
    problems: tuple[str, ...] = ()

    @property
    def bottom_line(self) -> bool:
        return bool(self.signatures) and all(s.bottom_line for s in self.signatures) and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "bottom_line": self.bottom_line,
            "signatures": [s.to_json() for s in self.signatures],
            "problems": list(self.problems),
        }
