"""Qualified status of a signature (ETSI TS 119 615 via pyhanko's ``QualificationAssessor``).

pyhanko decides the certificate's status from its QC statements, the issuing service's status at a
given time (the lists' history is loaded as validity windows of "granted") and the list's qualifiers.
What is written here: finding the listed service that issued the certificate (the issuer's signature on
the certificate is checked, not only names), turning the outcome into the report's QESig / AdESig-QC /
... value with the reasons in words, and the QTST check on timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509
from pyhanko.sign.ades import qualified_asn1
from pyhanko.sign.validation.qualified.assess import QualificationAssessor
from pyhanko.sign.validation.qualified.q_status import QualificationResult
from pyhanko.sign.validation.qualified.tsp import CA_QC_URI, QTST_URI, QcCertType, QualifiedServiceInformation
from pyhanko_certvalidator.authority import TrustAnchor
from pyhanko_certvalidator.path import ValidationPath

from bidproc.signature.report import Indication, Qualification
from bidproc.signature.trust.authorities import AuthorityIndex, _issued_by, _name_key
from bidproc.signature.trust.lists import TrustedLists

MAX_DEPTH = 4  # intermediate CAs between the signer and a listed service, at most
MAX_PATHS = 16
MAX_CANDIDATES = 64


@dataclass(frozen=True)
class CertStatus:
    """The certificate's status at one time, before the signature's own verdict is taken into account."""

    qualified: bool
    qc_type: QcCertType
    qscd: bool
    listed: bool  # issued under a service of a loaded trusted list
    reasons: tuple[str, ...]


def paths_to(
    cert: x509.Certificate, index: AuthorityIndex, extra: Sequence[x509.Certificate]
) -> Iterator[ValidationPath]:
    """Chains from ``cert`` up to an authority of ``index``, through ``extra`` intermediates (each link's
    signature verified). Bounded: ``extra`` may come from a hostile file."""
    budget = [MAX_PATHS]
    cas: dict[str, list[x509.Certificate]] = {}
    for c in [c for c in extra if c.ca][:MAX_CANDIDATES]:
        cas.setdefault(_name_key(c.subject), []).append(c)

    def up(current: x509.Certificate, chain: list[x509.Certificate], depth: int) -> Iterator[ValidationPath]:
        for auth in index.issuers_of(current):
            if budget[0] > 0:
                budget[0] -= 1
                yield ValidationPath(TrustAnchor(auth), list(reversed(chain)), cert)
        if depth >= MAX_DEPTH:
            return
        for ca in cas.get(_name_key(current.issuer), ()):
            if budget[0] <= 0:
                return
            if all(ca.dump() != c.dump() for c in (cert, *chain)) and _issued_by(current, ca):
                yield from up(ca, [*chain, ca], depth + 1)

    yield from up(cert, [], 0)


def _statements(cert: x509.Certificate) -> str:
    names = []
    for st in qualified_asn1.get_qc_statements(cert):
        kind = st["statement_id"].native
        if kind == "qc_type":
            names.append("QcType " + ", ".join(str(t.native) for t in st["statement_info"]))
        else:
            names.append({"qc_compliance": "QcCompliance", "qc_sscd": "QcSSCD"}.get(kind, str(kind)))
    return ", ".join(names) if names else "none"


def _window(sd: QualifiedServiceInformation) -> str:
    until = sd.base_info.valid_until.isoformat() if sd.base_info.valid_until else "now"
    return f"{sd.base_info.valid_from.isoformat()} to {until}"


def cert_status(
    cert: x509.Certificate, lists: TrustedLists, at: datetime, extra: Sequence[x509.Certificate] = ()
) -> CertStatus:
    """Status of ``cert`` at ``at`` (the best signature time) under the loaded trusted lists."""
    reasons = [f"QC statements in the certificate: {_statements(cert)}"]
    registry = lists.registry
    paths = list(paths_to(cert, lists.ca_index, extra))
    assessor = QualificationAssessor(registry)
    if not paths:
        reasons.append("no qualified CA service of a loaded trusted list issued this certificate")
        return CertStatus(False, QcCertType.QC_ESIGN, False, False, tuple(reasons))
    best: QualificationResult | None = None
    for path in paths:
        try:
            result = assessor.check_entity_cert_qualified(path, moment=at)
        except NotImplementedError as exc:  # e.g. several QcType values: pyhanko refuses to guess
            reasons.append(f"qualification not assessed: {exc}")
            continue
        if best is None or (result.status.qualified and not best.status.qualified):
            best = result
    for path in paths:
        anchor = path.trust_anchor.authority
        for sd in registry.applicable_service_definitions(anchor, None):
            if sd.base_info.service_type != CA_QC_URI:
                continue
            where = lists.territory_of.get(sd, "?")
            reasons.append(f"issued under '{sd.base_info.service_name}' ({where} list), granted {_window(sd)}")
    if best is None or best.service_definition is None:
        reasons.append(f"no granted qualified service covers this certificate at {at.isoformat()}")
        return CertStatus(False, QcCertType.QC_ESIGN, False, True, tuple(reasons))
    sd = best.service_definition
    applied = sorted(
        {q.value for qual in sd.qualifications if qual.criteria_list.matches(cert) for q in qual.qualifiers}
    )
    reasons.append(
        f"service '{sd.base_info.service_name}' granted at {at.isoformat()}; list qualifiers applied: "
        + (", ".join(applied) or "none")
    )
    st = best.status
    return CertStatus(st.qualified, st.qc_type, st.qc_key_security.is_qscd, True, tuple(reasons))


def qualification(status: CertStatus, indication: Indication) -> tuple[Qualification, str]:
    """The report's value and the sentence that justifies it."""
    if indication is Indication.TOTAL_FAILED:
        return Qualification.NA, "the signature failed validation: it has no qualification"
    seal = status.qc_type is QcCertType.QC_ESEAL
    if status.qualified and status.qc_type is QcCertType.QC_WEB:
        return Qualification.NA, "a qualified certificate for website authentication does not make signatures"
    if status.qualified and status.qscd:
        value = Qualification.QESEAL if seal else Qualification.QESIG
        text = f"qualified certificate for electronic {'seals' if seal else 'signatures'}, key on a QSCD"
    elif status.qualified:
        value = Qualification.ADESEAL_QC if seal else Qualification.ADESIG_QC
        text = f"qualified certificate for electronic {'seals' if seal else 'signatures'}, key not shown on a QSCD"
    else:
        value = Qualification.ADESEAL if seal else Qualification.ADESIG
        text = "the certificate is not qualified"
    if indication is Indication.INDETERMINATE:
        text += " (the signature itself is INDETERMINATE: this holds only once it validates)"
    return value, text


def timestamp_qualified(tsa_der: bytes, lists: TrustedLists, at: datetime) -> bool:
    """The TSA's certificate is (or is issued by) a QTST service granted at the timestamp's time."""
    tsa = x509.Certificate.load(tsa_der)
    for auth in [*lists.tsa_index.by_subject.get(_name_key(tsa.subject), ()), *lists.tsa_index.issuers_of(tsa)]:
        if auth.certificate.dump() == tsa.dump() or _issued_by(tsa, auth.certificate):
            if any(
                sd.base_info.service_type == QTST_URI for sd in lists.registry.applicable_service_definitions(auth, at)
            ):
                return True
    return False
