"""Turning pyhanko's results, and any exception, into bidproc's verdict vocabulary — in one place."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from asn1crypto import x509
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESPassed, AdESSubIndic
from pyhanko.sign.general import CMSExtractionError, CMSStructuralError
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator.errors import InsufficientRevinfoError, StaleRevinfoError
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from bidproc.errors import Warning_
from bidproc.signature.report import Indication, Signer, SubIndication, TimestampInfo

log = logging.getLogger(__name__)

# pyhanko logs, then folds, certificate-path exceptions into a sub-indication (generic_cms.py,
# ``_handle_certvalidator_errors``): a revocation source that could not be reached becomes
# CERTIFICATE_CHAIN_GENERAL_FAILURE, where EN 319 102-1 §5.2.6 says INDETERMINATE/TRY_LATER. We keep
# the exceptions of the current validation (a context variable: one list per task) to tell them apart.
_path_errors: ContextVar[list[BaseException] | None] = ContextVar("bidproc_path_errors", default=None)


class _KeepPathErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        seen = _path_errors.get()
        if seen is not None and record.exc_info and record.exc_info[1] is not None:
            seen.append(record.exc_info[1])
            return False  # reported in the verdict instead of as a log traceback
        return True


for _name in (
    "pyhanko.sign.validation.generic_cms",
    "pyhanko.sign.validation.ades",
    *(f"pyhanko.sign.diff_analysis.{m}" for m in ("policies", "commons", "rules_api", "form_rules_api")),
):
    logging.getLogger(_name).addFilter(_KeepPathErrors())


@contextmanager
def path_errors() -> Iterator[list[BaseException]]:
    """Collect the certificate-path exceptions pyhanko swallows while the block runs."""
    seen: list[BaseException] = []
    token = _path_errors.set(seen)
    try:
        yield seen
    finally:
        _path_errors.reset(token)


def refine(
    indication: Indication,
    sub: SubIndication | None,
    status: Any,
    best: datetime | None,
    not_before: datetime | None,
    seen: list[BaseException],
) -> tuple[Indication, SubIndication | None]:
    """Where pyhanko's AdES answer stops short of EN 319 102-1, finish the decision (hand-written).

    - revocation data that could not be obtained: TRY_LATER (pyhanko: CERTIFICATE_CHAIN_GENERAL_FAILURE);
    - REVOKED_NO_POE when the earliest proof of existence (``best``: a timestamp or the deposit, never
      just "now") is not before the revocation: TOTAL_FAILED/REVOKED, no later proof can save it;
    - a proof of existence (``best``) before the signer certificate's notBefore: TOTAL_FAILED/NOT_YET_VALID
      (EN 319 102-1 §5.5.4 4)b): the signature provably existed before its certificate was valid);
    - a signer certificate that expired before the best signature time: pyhanko's with-time process
      lets it pass (it only checks "not yet valid"); without a proof of existence before expiry it is
      INDETERMINATE/OUT_OF_BOUNDS_NO_POE, and TOTAL_FAILED/EXPIRED when a content timestamp proves the
      signature was created after expiry.
    The TRY_LATER of a signer whose own revocation data shows it revoked (only its CAs' status missing)
    needs another certvalidator run: :func:`expiry.recheck_expired_signer` does it, deciding with
    :func:`revoked_verdict` as here.
    """
    if sub is SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE and any(
        isinstance(e, InsufficientRevinfoError) and not isinstance(e, StaleRevinfoError) for e in seen
    ):
        return Indication.INDETERMINATE, SubIndication.TRY_LATER
    details = getattr(status, "revocation_details", None)
    if sub is SubIndication.REVOKED_NO_POE and details is not None:
        decided = revoked_verdict(details.revocation_date, best)
        if decided is not None:
            return decided
    cert = getattr(status, "signing_cert", None)
    if _predates_certificate(indication, sub, details is not None, cert, best):
        return Indication.TOTAL_FAILED, SubIndication.NOT_YET_VALID
    if indication is Indication.TOTAL_PASSED and cert is not None:
        not_after = cert["tbs_certificate"]["validity"]["not_after"].native
        if not_before is not None and not_before > not_after:
            return Indication.TOTAL_FAILED, SubIndication.EXPIRED
        if best is not None and best > not_after:
            return Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE
    return indication, sub


# EN 319 102-1 §5.5.4 4)a)-d): after these answers of the basic validation (and after PASSED), a proof of
# existence before the signing certificate's notBefore is FAILED/NOT_YET_VALID. pyhanko's with-time
# process checks it only after OUT_OF_BOUNDS_NO_POE (and answers INDETERMINATE there).
_ISSUANCE_DECIDES = frozenset(
    {
        SubIndication.REVOKED_NO_POE,
        SubIndication.OUT_OF_BOUNDS_NO_POE,
        SubIndication.OUT_OF_BOUNDS_NOT_REVOKED,
        SubIndication.NOT_YET_VALID,
    }
)


def _predates_certificate(
    indication: Indication, sub: SubIndication | None, revocation_known: bool, cert: Any, best: datetime | None
) -> bool:
    """Whether the proof of existence ``best`` is before ``cert``'s notBefore where that decides (above).
    A REVOKED_NO_POE reaching this was revoked after ``best`` (:func:`refine` decided the others)."""
    if cert is None or best is None:
        return False
    if not (indication is Indication.TOTAL_PASSED or sub in _ISSUANCE_DECIDES):
        return False
    if sub is SubIndication.REVOKED_NO_POE and not revocation_known:
        return False
    issued: datetime = cert["tbs_certificate"]["validity"]["not_before"].native
    return best < issued


def revoked_verdict(revoked_at: datetime, best: datetime | None) -> tuple[Indication, SubIndication] | None:
    """A signing certificate revoked at ``revoked_at``; ``best`` is the earliest proof of existence of
    the signature (None: none, a claimed signing time proves nothing). None: a proof of existence
    before the revocation, so the revocation does not decide the verdict.

    EN 319 102-1 §5.2.6/§5.5.4: revoked without proof of existence before the revocation is
    INDETERMINATE/REVOKED_NO_POE; a proof only from the revocation on is TOTAL_FAILED/REVOKED.
    """
    if best is None:
        return Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE
    if best >= revoked_at:
        return Indication.TOTAL_FAILED, SubIndication.REVOKED
    return None


def indication_of(sub: AdESSubIndic) -> tuple[Indication, SubIndication | None]:
    """pyhanko's AdES sub-indication -> (EN 319 102-1 indication, sub-indication); names are the standard's."""
    if isinstance(sub, AdESPassed):
        return Indication.TOTAL_PASSED, None
    key = str(getattr(sub, "name", ""))  # the AdES enums share EN 319 102-1's names with ours
    name = SubIndication[key] if key in SubIndication.__members__ else SubIndication.GENERIC
    if isinstance(sub, AdESFailure):
        return Indication.TOTAL_FAILED, name
    assert isinstance(sub, AdESIndeterminate)
    return Indication.INDETERMINATE, name


class UnacceptableAlgorithm(ValueError):
    """A digest or signature algorithm we cannot or will not compute (e.g. a signature OID as digest)."""


class MalformedSignature(ValueError):
    """The signature's structure is not what its format requires (found by a parse forced before
    validation, e.g. :func:`cades_format.load_signed_data`); the message says what is wrong."""


def check_digest_algorithm(name: str) -> None:
    try:
        get_pyca_cryptography_hash(name)
    except (AttributeError, KeyError, ValueError, NotImplementedError) as exc:
        raise UnacceptableAlgorithm(f"digest algorithm {name!r} is not acceptable") from exc


def indication_for_exception(exc: BaseException) -> tuple[Indication, SubIndication, str]:
    """The verdict for a signature whose validation raised: the one place exceptions become indications.

    A structure we cannot parse is a FORMAT_FAILURE (the signature is not what it claims to be); a
    missing signer certificate is INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND; a validation error
    carrying its own AdES sub-indication keeps it; anything else is INDETERMINATE/GENERIC, never a pass.
    A bare ValueError/TypeError (what asn1crypto raises on a lazily parsed field) stays GENERIC: it
    cannot be told from a bug here. Structures are therefore parsed before validation and their damage
    raised as :class:`MalformedSignature` (CMS: :mod:`cades_format`).
    """
    if isinstance(exc, UnacceptableAlgorithm):
        return Indication.INDETERMINATE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE, str(exc)
    if isinstance(exc, MalformedSignature):
        return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, str(exc)
    if isinstance(exc, SignatureValidationError) and exc.ades_subindication is not None:
        ind, sub = indication_of(exc.ades_subindication)
        return ind, sub or SubIndication.GENERIC, exc.failure_message
    if isinstance(exc, CMSExtractionError | CMSStructuralError | PdfReadError):
        return Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, f"{type(exc).__name__}: {exc}"
    log.warning("signature validation raised", exc_info=exc)
    return Indication.INDETERMINATE, SubIndication.GENERIC, f"{type(exc).__name__}: {exc}"


def _attr(name: x509.Name, key: str) -> str | None:
    value = name.native.get(key)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value) if value is not None else None


def signer_of(cert: x509.Certificate | None) -> Signer | None:
    if cert is None:
        return None
    subject = cert.subject
    validity = cert["tbs_certificate"]["validity"]
    return Signer(
        subject=subject.human_friendly,
        common_name=_attr(subject, "common_name"),
        organisation=_attr(subject, "organization_name"),
        serial_number=_attr(subject, "serial_number"),
        issuer=cert.issuer.human_friendly,
        certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
        certificate_der=cert.dump(),  # HOOK (trust, issue 12): the qualification step needs the certificate
    )


def timestamp_info(kind: str, status: TimestampSignatureStatus, detail: str | None = None) -> TimestampInfo:
    """A validated timestamp token's time, TSA and whether it passed (intact, valid, trusted)."""
    tsa = status.signing_cert.subject.human_friendly if status.signing_cert is not None else None
    valid = bool(status.intact and status.valid and status.trusted)
    # HOOK (trust, issue 12): the TSA certificate, so the qualification step can tell a QTST
    tsa_der = status.signing_cert.dump() if status.signing_cert is not None else None
    return TimestampInfo(kind=kind, time=status.timestamp, tsa=tsa, valid=valid, detail=detail, tsa_certificate=tsa_der)


def embedded_timestamps(si: Any, reported: list[TimestampInfo]) -> list[TimestampInfo]:
    """Signature timestamps present but not reported (validation stopped before them): listed, not vouched for."""
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    out = []
    for token in extract_tst_data_iter(si, signed=False):
        try:
            when = token["encap_content_info"]["content"].parsed["gen_time"].native
        except (KeyError, ValueError, AttributeError):
            continue
        if not any(t.kind == "signature" and t.time == when for t in reported):
            out.append(
                TimestampInfo(
                    kind="signature",
                    time=when,
                    valid=False,
                    detail="not validated: validation stopped before the timestamp",
                )
            )
    return out


def offline_warning(offline: bool, sub: SubIndication | None) -> tuple[str, ...]:
    """Offline, no fetch happens: TRY_LATER then means "no revocation data in the signature", say so."""
    if offline and sub is SubIndication.TRY_LATER:
        return (
            f"{Warning_.SIGNATURE_OFFLINE_NO_REVOCATION.value}: offline validation uses only revocation data "
            "embedded in the signature or given by the caller, and none covers this certificate",
        )
    return ()


def claimed_time(status: Any) -> datetime | None:
    """The signing time the signer claims (CMS signingTime), if any."""
    value = getattr(status, "signer_reported_dt", None)
    return value if isinstance(value, datetime) else None
