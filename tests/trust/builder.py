"""Synthetic trusted lists and certificates for the trust tests (test side only).

pyhanko 0.38 ships no public helper for building trusted lists, so the lists are written here with lxml
in the TS 119 612 shape the real lists use (see ../shared/corpus/trusted-lists) and signed as the real
ones are: an enveloped XAdES signature (signxml's XAdESSigner). Certificates are made with
``cryptography``; the QC statements (QcCompliance, QcSSCD, QcType) with pyhanko's ASN.1 definitions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko.sign.ades import qualified_asn1
from signxml import SignatureMethod
from signxml.xades import XAdESSigner

TSL = "http://uri.etsi.org/02231/v2#"
ADD = "http://uri.etsi.org/02231/v2/additionaltypes#"
SIE = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
URI = "http://uri.etsi.org/TrstSvc"
CA_QC = f"{URI}/Svctype/CA/QC"
QTST = f"{URI}/Svctype/TSA/QTST"
GRANTED = f"{URI}/TrustedList/Svcstatus/granted"
WITHDRAWN = f"{URI}/TrustedList/Svcstatus/withdrawn"
EXT = f"{URI}/TrustedList/SvcInfoExt"
NOW = datetime.now(UTC).replace(microsecond=0)
QC_STATEMENTS_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")


@dataclass
class Key:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def qc_statements(compliance: bool = True, sscd: bool = False, qc_type: str | None = "qct_esign") -> bytes:
    items = []
    if compliance:
        items.append({"statement_id": "qc_compliance"})
    if sscd:
        items.append({"statement_id": "qc_sscd"})
    if qc_type is not None:
        items.append({"statement_id": "qc_type", "statement_info": qualified_asn1.QcCertificateType([qc_type])})
    return bytes(qualified_asn1.QcStatements(items).dump())


def make_cert(
    name: str,
    issuer: Key | None = None,
    ca: bool = False,
    qc: bytes | None = None,
    not_before: datetime | None = None,
    days: int = 3650,
    org: str | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    extra: tuple[x509.ExtensionType, ...] = (),
) -> Key:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    subject = x509.Name(attrs)
    start = not_before or NOW - timedelta(days=365)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage), critical=True
        )
    else:
        usage["content_commitment"] = True
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), critical=True
        )
    if qc is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(QC_STATEMENTS_OID, qc), critical=False)
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    signing_key = issuer.key if issuer else key
    return Key(builder.sign(signing_key, hashes.SHA256()), key)


@dataclass
class Service:
    ca: Key
    name: str
    status: str = GRANTED
    since: datetime = field(default_factory=lambda: NOW - timedelta(days=2000))
    history: list[tuple[str, datetime]] = field(default_factory=list)  # (status, since), older states
    qualifiers: list[str] = field(default_factory=list)  # e.g. "QCWithQSCD", applied to every certificate
    service_type: str = CA_QC
    for_type: str | None = "ForeSignatures"


def _e(parent: etree._Element, tag: str, text: str | None = None, ns: str = TSL, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
    if text is not None:
        el.text = text
    return el


def _name(parent: etree._Element, tag: str, text: str) -> None:
    holder = _e(parent, tag)
    _e(holder, "Name", text, **{"{http://www.w3.org/XML/1998/namespace}lang": "en"})


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


def _scheme(
    root: etree._Element,
    territory: str,
    tsl_type: str,
    issued: datetime,
    next_update: datetime,
    pivots: tuple[str, ...] = (),
) -> etree._Element:
    info = _e(root, "SchemeInformation")
    _e(info, "TSLVersionIdentifier", "6")
    _e(info, "TSLSequenceNumber", "1")
    _e(info, "TSLType", f"{URI}/TrustedList/TSLType/{tsl_type}")
    _name(info, "SchemeOperatorName", f"Test scheme operator {territory}")
    uri = _e(info, "SchemeInformationURI")
    for link in [f"https://tl.example/{territory}/", *pivots]:  # URIs ending in .xml are pivot LOTLs
        _e(uri, "URI", link, **{"{http://www.w3.org/XML/1998/namespace}lang": "en"})
    _e(info, "StatusDeterminationApproach", f"{URI}/TrustedList/StatusDetn/EUappropriate")
    _e(info, "SchemeTerritory", territory)
    _e(info, "HistoricalInformationPeriod", "65535")
    _e(info, "ListIssueDateTime", issued.strftime("%Y-%m-%dT%H:%M:%SZ"))
    nxt = _e(info, "NextUpdate")
    _e(nxt, "dateTime", next_update.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return info


def _extensions(parent: etree._Element, svc: Service) -> None:
    exts = _e(parent, "ServiceInformationExtensions")
    if svc.qualifiers:
        ext = _e(exts, "Extension", Critical="true")
        quals = _e(ext, "Qualifications", ns=SIE)
        element = _e(quals, "QualificationElement", ns=SIE)
        qs = _e(element, "Qualifiers", ns=SIE)
        for q in svc.qualifiers:
            _e(qs, "Qualifier", ns=SIE, uri=f"{EXT}/{q}")
        crit = _e(element, "CriteriaList", ns=SIE)
        crit.set("assert", "all")
        ku = _e(crit, "KeyUsage", ns=SIE)
        _e(ku, "KeyUsageBit", "true", ns=SIE, name="digitalSignature")
    if svc.for_type:
        ext = _e(exts, "Extension", Critical="true")
        asi = _e(ext, "AdditionalServiceInformation")
        _e(asi, "URI", f"{EXT}/{svc.for_type}", **{"{http://www.w3.org/XML/1998/namespace}lang": "en"})


def national_list(
    territory: str, services: list[Service], issued: datetime | None = None, next_update: datetime | None = None
) -> etree._Element:
    root = etree.Element(f"{{{TSL}}}TrustServiceStatusList", nsmap={None: TSL, "ns5": SIE, "ns4": XADES}, Id="TL")
    _scheme(root, territory, "EUgeneric", issued or NOW - timedelta(days=1), next_update or NOW + timedelta(days=180))
    tsps = _e(root, "TrustServiceProviderList")
    for svc in services:
        tsp = _e(tsps, "TrustServiceProvider")
        tinfo = _e(tsp, "TSPInformation")
        _name(tinfo, "TSPName", f"TSP of {svc.name}")
        services_el = _e(tsp, "TSPServices")
        service = _e(services_el, "TSPService")
        info = _e(service, "ServiceInformation")
        _e(info, "ServiceTypeIdentifier", svc.service_type)
        _name(info, "ServiceName", svc.name)
        sdi = _e(info, "ServiceDigitalIdentity")
        _e(_e(sdi, "DigitalId"), "X509Certificate", _b64(svc.ca.der))
        _e(info, "ServiceStatus", svc.status)
        _e(info, "StatusStartingTime", svc.since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        _extensions(info, svc)
        if svc.history:
            hist = _e(service, "ServiceHistory")
            for status, since in svc.history:
                inst = _e(hist, "ServiceHistoryInstance")
                _e(inst, "ServiceTypeIdentifier", svc.service_type)
                _name(inst, "ServiceName", svc.name)
                hsdi = _e(inst, "ServiceDigitalIdentity")  # by subject name only, as real lists do
                _e(_e(hsdi, "DigitalId"), "X509SubjectName", svc.ca.cert.subject.rfc4514_string())
                _e(inst, "ServiceStatus", status)
                _e(inst, "StatusStartingTime", since.strftime("%Y-%m-%dT%H:%M:%SZ"))
                _extensions(inst, svc)
    return root


def lotl(
    pointers: list[tuple[str, str, list[Key]]],
    issued: datetime | None = None,
    next_update: datetime | None = None,
    self_signers: list[Key] | None = None,
    pivots: tuple[str, ...] = (),
) -> etree._Element:
    """``pointers``: (territory, location, signers) of each national list; ``self_signers``: the LOTL's
    own pointer (the signers of the next LOTL, as pivots announce them); ``pivots``: pivot LOTL URLs."""
    root = etree.Element(f"{{{TSL}}}TrustServiceStatusList", nsmap={None: TSL, "ns3": ADD}, Id="LOTL")
    issued = issued or NOW - timedelta(days=1)
    info = _scheme(root, "EU", "EUlistofthelists", issued, next_update or NOW + timedelta(days=180), pivots)
    ptrs = _e(info, "PointersToOtherTSL")
    entries = [(t, loc, signers, "EUcommon") for t, loc, signers in pointers]
    if self_signers:
        entries.append(("EU", "https://lotl.example/eu-lotl.xml", self_signers, "EUlistofthelists"))
    for territory, location, signers, rule in entries:
        ptr = _e(ptrs, "OtherTSLPointer")
        sdis = _e(ptr, "ServiceDigitalIdentities")
        for signer in signers:
            _e(_e(_e(sdis, "ServiceDigitalIdentity"), "DigitalId"), "X509Certificate", _b64(signer.der))
        _e(ptr, "TSLLocation", location)
        add = _e(ptr, "AdditionalInformation")
        _e(_e(add, "OtherInformation"), "TSLType", f"{URI}/TrustedList/TSLType/EUgeneric")
        _e(_e(add, "OtherInformation"), "SchemeTerritory", territory)
        _e(_e(add, "OtherInformation"), "MimeType", "application/vnd.etsi.tsl+xml", ns=ADD)
        rules = _e(_e(add, "OtherInformation"), "SchemeTypeCommunityRules")
        lang = {"{http://www.w3.org/XML/1998/namespace}lang": "en"}
        _e(rules, "URI", f"{URI}/TrustedList/schemerules/{rule}", **lang)
    return root


def sign_list(root: etree._Element, signer: Key) -> bytes:
    signed = XAdESSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256).sign(
        root,
        key=signer.key,
        cert=[signer.cert.public_bytes(serialization.Encoding.PEM).decode()],
    )
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def unsigned(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
