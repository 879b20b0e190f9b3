"""CAdES validation data embedded in the CMS, as pyhanko local knowledge (so B-LT validates offline).

Two places hold it, and pyhanko 0.38 reads neither for CMS (hand-written, on asn1crypto):
- EN 319 122-1 baseline B-LT: ``SignedData.certificates`` and ``SignedData.crls``, where a CRL is a
  CertificateList and an OCSP response an OtherRevocationInfoFormat with id-ri-ocsp-response (RFC 5940
  §3: the whole OCSPResponse; some producers put the BasicOCSPResponse alone, accepted too); the
  signature timestamp token's own certificates and crls likewise carry the TSA's;
- CAdES-X-L (RFC 5126 §6.3.4, TS 101 733): the revocation-values unsigned attribute.
The data only informs certvalidator: each CRL and OCSP response is still verified by it (signature,
issuer, freshness); nothing here is trusted because it is present.
"""

from __future__ import annotations

from asn1crypto import cms, core, crl, ocsp, parser, x509
from pyhanko.sign.validation import generic_cms
from pyhanko.sign.validation.policy_decl import LocalKnowledge
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

REVOCATION_VALUES = "1.2.840.113549.1.9.16.2.24"  # id-aa-ets-revocationValues (RFC 5126)
OCSP_RI = "1.3.6.1.5.5.7.16.2"  # id-ri-ocsp-response (RFC 5940)


class _CRLs(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = crl.CertificateList


class _OCSPs(core.SequenceOf):  # type: ignore[misc]
    _child_spec = ocsp.BasicOCSPResponse


class RevocationValues(core.Sequence):  # type: ignore[misc]
    """RFC 5126 §6.3.4 (asn1crypto and pyhanko do not define it)."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("crl_vals", _CRLs, {"explicit": 0, "optional": True}),
        ("ocsp_vals", _OCSPs, {"explicit": 1, "optional": True}),
        ("other_rev_vals", core.Any, {"explicit": 2, "optional": True}),
    ]


def _wrap_basic(basic: ocsp.BasicOCSPResponse) -> ocsp.OCSPResponse:
    return ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
        }
    )


def _ocsp_entry(raw: bytes) -> list[OCSPContainer]:
    """An id-ri-ocsp-response value: an OCSPResponse (RFC 5940), or a bare BasicOCSPResponse.

    The two are told apart by their first field: OCSPResponse starts with an ENUMERATED status,
    BasicOCSPResponse with the tbsResponseData SEQUENCE.
    """
    outer = core.Sequence.load(raw)
    first = outer.contents[:1]
    if first == b"\x0a":
        resp = ocsp.OCSPResponse.load(raw)
        if resp["response_status"].native != "successful":
            return []
        return list(OCSPContainer.load_multi(resp))
    return list(OCSPContainer.load_multi(_wrap_basic(ocsp.BasicOCSPResponse.load(raw))))


def _other_rev_info_raw(other: cms.OtherRevocationInfoFormat) -> bytes:
    """otherRevInfo as found: asn1crypto would parse it as an OCSPResponse, which a BasicOCSPResponse is not."""
    oid = parser.parse(other.contents, strict=False)
    return bytes(other.contents[len(oid[3]) + len(oid[4]) + len(oid[5]) :])


def _signed_data_revinfo(sd: cms.SignedData) -> tuple[list[CRLContainer], list[OCSPContainer]]:
    """SignedData.crls. An entry that does not parse is skipped: it cannot help validation, and the
    B-LT level is only claimed when the remaining data validates the chain (expiry.validation_data_gap)."""
    crls: list[CRLContainer] = []
    ocsps: list[OCSPContainer] = []
    if isinstance(sd["crls"], core.Void):
        return crls, ocsps
    for choice in sd["crls"]:
        try:
            if choice.name == "crl":
                crls.append(CRLContainer(crl.CertificateList.load(choice.chosen.dump())))
            elif choice.chosen["other_rev_info_format"].dotted == OCSP_RI:
                ocsps.extend(_ocsp_entry(_other_rev_info_raw(choice.chosen)))
        except (ValueError, TypeError, KeyError):
            continue
    return crls, ocsps


def _revocation_values(si: cms.SignerInfo) -> tuple[list[CRLContainer], list[OCSPContainer]]:
    crls: list[CRLContainer] = []
    ocsps: list[OCSPContainer] = []
    attrs = si["unsigned_attrs"]
    if isinstance(attrs, core.Void):
        return crls, ocsps
    for attr in attrs:
        if attr["type"].dotted != REVOCATION_VALUES:
            continue
        for value in attr["values"]:
            rv = RevocationValues.load(value.dump())
            for item in rv["crl_vals"] if rv["crl_vals"].native is not None else []:
                crls.append(CRLContainer(item))
            for item in rv["ocsp_vals"] if rv["ocsp_vals"].native is not None else []:
                ocsps.extend(OCSPContainer.load_multi(_wrap_basic(item)))
    return crls, ocsps


def _certificates(sd: cms.SignedData) -> list[x509.Certificate]:
    certs = sd["certificates"]
    return [] if isinstance(certs, core.Void) else [c.chosen for c in certs if c.name == "certificate"]


def has_revocation_data(sd: cms.SignedData, si: cms.SignerInfo) -> bool:
    """Whether the signature carries revocation data at all (a B-LT candidate; see lt_knowledge)."""
    attrs = si["unsigned_attrs"]
    in_attrs = not isinstance(attrs, core.Void) and any(a["type"].dotted == REVOCATION_VALUES for a in attrs)
    return in_attrs or (not isinstance(sd["crls"], core.Void) and len(sd["crls"]) > 0)


def lt_knowledge(sd: cms.SignedData, si: cms.SignerInfo) -> LocalKnowledge | None:
    """Every certificate, CRL and OCSP response the signature carries (SignedData, the signer's
    revocation-values, its signature timestamp tokens); None when it carries no revocation data."""
    crls, ocsps = _signed_data_revinfo(sd)
    attr_crls, attr_ocsps = _revocation_values(si)
    crls += attr_crls
    ocsps += attr_ocsps
    certs = _certificates(sd)
    for token in generic_cms.extract_tst_data_iter(si, signed=False):
        token_crls, token_ocsps = _signed_data_revinfo(token)
        crls += token_crls
        ocsps += token_ocsps
        certs += _certificates(token)
    if not crls and not ocsps and not has_revocation_data(sd, si):
        return None
    return LocalKnowledge(known_crls=crls, known_ocsps=ocsps, known_certs=certs)
