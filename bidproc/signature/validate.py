"""The entry points the pipeline and the CLI call: every signature in a set of files, validated.

``validate_files`` maps each file that is or carries a signature to its :class:`ValidationReport`.
Detached signatures are paired across the given files by the digest they sign; ASiC containers are
opened and their signatures validated against their members. Any exception becomes a verdict here
(per signature via :func:`outcome.indication_for_exception`, per file as a ``signature.unreadable``
problem): validation never raises to the caller for bad input.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from bidproc.errors import Code, Warning_
from bidproc.signature import discover
from bidproc.signature.cades.asic import manifest_problems
from bidproc.signature.cades.validator import enveloped_content, load_signed_data, validate_cms
from bidproc.signature.context import Context, run, validation_time
from bidproc.signature.discover import Found, Kind
from bidproc.signature.french import with_french_rule
from bidproc.signature.outcome import indication_for_exception
from bidproc.signature.pades.validator import validate_pdf
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureFormat, SignatureReport, SubIndication, ValidationReport
from bidproc.signature.trust.assess import assess
from bidproc.signature.trust.embedded import embedded_certificates

log = logging.getLogger(__name__)
NO_DETACHED: Mapping[str, bytes] = {}


def _finish(
    reports: list[SignatureReport], policy: ValidationPolicy, now: datetime, carried: tuple[bytes, ...] = ()
) -> tuple[SignatureReport, ...]:
    """Every report gets its French-rule verdict (those from error paths too), then its qualification
    and the rule's certificate-category point (trust.assess: one step for PAdES, CAdES and XAdES);
    ``carried`` are the certificates the file carries (candidate intermediates for the trusted lists)."""
    ruled = [r if r.french_rule is not None else with_french_rule(r, r.subindication, None) for r in reports]
    extra = policy.extra_certificates + carried
    return tuple(assess(r, policy.trust, now, extra) for r in ruled)


def _carried(found: Found, data: bytes, policy: ValidationPolicy) -> tuple[bytes, ...]:
    """Only looked for when the qualification step will use them."""
    trust = policy.trust
    return embedded_certificates(found, data) if trust.lists is not None or trust.equivalent_cas else ()


async def _binary(
    name: str, data: bytes, found: Found, ctx: Context, files: Mapping[str, bytes]
) -> list[SignatureReport]:
    """PAdES and CAdES, inside the shared event loop and HTTP session."""
    try:
        if found.kind is Kind.PDF:
            return await validate_pdf(name, data, ctx)
        assert found.signed_data is not None
        return await validate_cms(name, found.signed_data, ctx, files)
    except Exception as exc:
        ind, sub, msg = indication_for_exception(exc)
        fmt = SignatureFormat.PADES if found.kind is Kind.PDF else SignatureFormat.CADES
        return [SignatureReport(file=name, format=fmt, indication=ind, subindication=sub, errors=(msg,))]


def _xades(
    name: str, data: bytes, policy: ValidationPolicy, files: Mapping[str, bytes], now: datetime
) -> list[SignatureReport]:
    from bidproc.signature.xades.validator import validate_xades  # the XAdES helper's module; loaded only for XML

    try:
        return list(validate_xades(name, data, policy, files, now))
    except Exception as exc:
        ind, sub, msg = indication_for_exception(exc)
        return [
            SignatureReport(file=name, format=SignatureFormat.XADES, indication=ind, subindication=sub, errors=(msg,))
        ]


def _asic(name: str, data: bytes, policy: ValidationPolicy, now: datetime) -> ValidationReport:
    members = discover.asic_members(data)
    signed = discover.asic_signed_files(members)
    inner = _validate(
        {n: d for n, d in members.items() if n.startswith("META-INF/")} | signed,
        policy,
        lambda n: n.startswith("META-INF/") and "manifest" not in n.lower(),
        now,
    )
    sigs: list[SignatureReport] = []
    problems: list[str] = []
    for member, report in inner.items():
        problems += [f"{member}: {p}" for p in report.problems]
        for sig in report.signatures:
            sig = replace(sig, file=f"{name}!/{member}")
            manifest = next((s for s in sig.signed_data if "manifest" in s.lower()), None)
            if manifest is not None and sig.format is SignatureFormat.CADES:
                covered, bad, weak = manifest_problems(members[manifest], members)
                sig = replace(sig, signed_data=(*sig.signed_data, *covered), errors=(*sig.errors, *bad, *weak))
                if sig.indication is Indication.TOTAL_PASSED and (bad or weak):
                    sig = _manifest_verdict(sig, bool(bad))
            sigs.append(sig)
    problems += _uncovered_members(members, sigs)
    problems += [f"{Warning_.ASIC_AMBIGUOUS_MEMBER.value}: {n}: {why}" for n, why in discover.asic_unread(data)]
    carried: tuple[bytes, ...] = ()
    for member, content in members.items():
        if member.startswith("META-INF/") and "manifest" not in member.lower():
            try:
                carried += _carried(discover.classify(member, content), content, policy)
            except Exception as exc:  # an unreadable member is reported by the inner validation
                log.debug("no certificates read from %s", member, exc_info=exc)
    return ValidationReport(subject=name, signatures=_finish(sigs, policy, now, carried), problems=tuple(problems))


def _manifest_verdict(sig: SignatureReport, mismatch: bool) -> SignatureReport:
    """A CAdES signature over an ASiC manifest that does not bind the members: a reference that does not
    match is a HASH_FAILURE; one under a weak digest only, CRYPTO_CONSTRAINTS_FAILURE (EN 319 102-1 §5.2.8).
    The French rule's integrity point is decided again on that verdict (the CMS check alone passed)."""
    if mismatch:
        sig = replace(sig, indication=Indication.TOTAL_FAILED, subindication=SubIndication.HASH_FAILURE)
    else:
        sig = replace(sig, indication=Indication.INDETERMINATE, subindication=SubIndication.CRYPTO_CONSTRAINTS_FAILURE)
    return with_french_rule(sig, sig.subindication, None)


def _uncovered_members(members: Mapping[str, bytes], sigs: list[SignatureReport]) -> list[str]:
    """Data in the container that no signature covers: the container as a whole is then not signed."""
    covered = set()
    for sig in sigs:
        for entry in sig.signed_data:
            covered.add(entry.removeprefix("file:").split(" sha256=")[0].strip())
    data = [n for n in members if not n.startswith("META-INF/") and n != "mimetype" and not n.endswith("/")]
    return [
        f"{Warning_.ASIC_UNSIGNED_MEMBER.value}: {n} is in the container but no signature covers it"
        for n in data
        if n not in covered
    ]


def validate_files(
    files: Mapping[str, bytes], policy: ValidationPolicy, now: datetime | None = None
) -> dict[str, ValidationReport]:
    """File name -> report, for the files that are or carry signatures (detached ones paired across ``files``).

    ``now`` is the validation time, read once by the caller (see :func:`context.validation_time`)."""
    return _validate(files, policy, lambda _name: True, validation_time(policy, now))


def _validate(
    files: Mapping[str, bytes], policy: ValidationPolicy, wanted: Callable[[str], bool], now: datetime
) -> dict[str, ValidationReport]:
    """Reports for the files ``wanted`` selects; every file of ``files`` may be signed data."""
    found: dict[str, Found] = {}
    problems: dict[str, list[str]] = {}
    for name, data in files.items():
        if not wanted(name):
            continue
        try:
            found[name] = discover.classify(name, data)
        except Exception as exc:
            problems[name] = [f"{Code.SIGNATURE_UNREADABLE.value}: {type(exc).__name__}: {exc}"]
    binary = [(n, f) for n, f in found.items() if f.kind in {Kind.PDF, Kind.CMS}]

    async def work(ctx: Context) -> dict[str, list[SignatureReport]]:
        return {n: await _binary(n, files[n], f, ctx, files) for n, f in binary}

    results: dict[str, list[SignatureReport]] = run(policy, work, now) if binary else {}
    for name, f in found.items():
        if f.kind is Kind.XML:
            results[name] = _xades(name, files[name], policy, files, now)
            partial = [
                w for s in results[name] for w in s.warnings if w.startswith(Warning_.XML_PARTIALLY_SIGNED.value)
            ]
            if partial:  # each signature may be valid, the file as a reader sees it is not signed
                problems.setdefault(name, []).extend(sorted(set(partial)))
    out: dict[str, ValidationReport] = {}
    for name, f in found.items():
        if f.kind is Kind.ASIC:
            try:
                out[name] = _asic(name, files[name], policy, now)
            except Exception as exc:
                out[name] = ValidationReport(
                    subject=name, problems=(f"{Code.SIGNATURE_UNREADABLE.value}: {type(exc).__name__}: {exc}",)
                )
        elif results.get(name):
            carried = _carried(f, files[name], policy)
            out[name] = ValidationReport(subject=name, signatures=_finish(results[name], policy, now, carried))
    for name, msgs in problems.items():
        known = out.get(name)
        out[name] = (
            replace(known, problems=(*known.problems, *msgs))
            if known is not None
            else ValidationReport(subject=name, problems=tuple(msgs))
        )
    return out


def validate_file(
    name: str,
    data: bytes,
    policy: ValidationPolicy,
    detached: Mapping[str, bytes] = NO_DETACHED,
    now: datetime | None = None,
) -> ValidationReport:
    """The report for one file; ``detached`` are the other files its signatures may sign; ``now`` as for
    :func:`validate_files`."""
    reports = _validate({**detached, name: data}, policy, lambda n: n == name, validation_time(policy, now))
    return reports.get(name) or ValidationReport(subject=name, problems=("no signature found",))


def enveloped_content_of(data: bytes) -> bytes | None:
    """The document inside an enveloping CAdES signature (.p7m), for the pipeline to send through intake;
    None when ``data`` is not an enveloping CMS signature."""
    sd = load_signed_data(data)
    return None if sd is None else enveloped_content(sd)


def content_sha256(data: bytes) -> str:
    """The digest :attr:`ValidationPolicy.proofs_of_existence` is keyed by."""
    return hashlib.sha256(data).hexdigest()
