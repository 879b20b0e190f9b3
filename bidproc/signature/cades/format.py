"""Reading a CMS signature file, and telling a damaged SignedData from data that is not CMS at all.

asn1crypto parses lazily: a damaged field raises ValueError/TypeError at its first access, which may be
deep inside pyhanko, where it cannot be told from a bug. So the structure is parsed here, once, before
validation: a blob that claims to be a SignedData (a ContentInfo with the id-signedData type, even
truncated, or a SignedData under another content type) but does not parse becomes a
:class:`BrokenSignedData`, which validation reports as TOTAL_FAILED/FORMAT_FAILURE (EN 319 102-1
§5.2.2: the signature is not in the format it claims). Anything else is "not CMS" (None).

Hand-written: the prefix test for truncated blobs, and the list of fields forced here, which are those
pyhanko reads before or while it verifies the signature. Fields parsed later (deep inside a
certificate, say) that fail still end as INDETERMINATE/GENERIC: they cannot be told from a bug.
"""

from __future__ import annotations

from asn1crypto import cms, core, parser, pem

SIGNED_DATA_OID = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
PARSE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, IndexError, AttributeError)
# RFC 5652 §5.3: when signed attributes are present, these two are required, each exactly once
REQUIRED_SIGNED_ATTRS = ("content_type", "message_digest")
# signed attributes whose values pyhanko decodes (the others are only hashed, as found)
DECODED_SIGNED_ATTRS = frozenset(
    {
        "content_type",
        "message_digest",
        "signing_time",
        "signing_certificate",
        "signing_certificate_v2",
        "cms_algorithm_protection",
    }
)


class BrokenSignedData(cms.SignedData):  # type: ignore[misc]  # asn1crypto is untyped
    """Stands for a CMS that claims to be a SignedData and is not one; ``problem`` says why."""

    problem: str = ""


def broken(problem: str) -> BrokenSignedData:
    sd = BrokenSignedData()
    sd.problem = problem
    return sd


def _claims_signed_data(data: bytes) -> bool:
    """A SEQUENCE whose first element is the id-signedData OID (read from the header, so a truncated
    file still counts)."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    first = data[1]
    header = 2 if first <= 0x80 else 2 + (first & 0x7F)  # short form, indefinite, or long form
    return bool(data[header : header + len(SIGNED_DATA_OID)] == SIGNED_DATA_OID)


def _check_attrs(attrs: cms.CMSAttributes, decoded: frozenset[str]) -> list[str]:
    """Each attribute's type and value set parse (values are TLVs); those named in ``decoded`` are
    decoded fully. Not all: an attribute asn1crypto does not know (revocation-values) has no generic
    decoding, and is read, if at all, by the module that knows it."""
    names = []
    for attr in attrs:
        name = attr["type"].native
        names.append(name)
        values = attr["values"]
        if len(values) == 0:
            raise ValueError(f"attribute {name} without a value")
        if name in decoded:
            values.native  # noqa: B018 - forces the parse
    return names


def _check_signer_info(si: cms.SignerInfo) -> None:
    si["version"].native  # noqa: B018
    si["sid"].native  # noqa: B018
    si["digest_algorithm"].native  # noqa: B018
    si["signature_algorithm"].native  # noqa: B018
    if not isinstance(si["signature"].native, bytes):
        raise ValueError("SignerInfo without a signature value")
    signed = si["signed_attrs"]
    if not isinstance(signed, core.Void):
        names = _check_attrs(signed, DECODED_SIGNED_ATTRS)
        for required in REQUIRED_SIGNED_ATTRS:
            if names.count(required) != 1 or len(signed[names.index(required)]["values"]) != 1:
                raise ValueError(f"signed attributes must hold exactly one {required} (RFC 5652 §5.3)")
    unsigned = si["unsigned_attrs"]
    if not isinstance(unsigned, core.Void):
        _check_attrs(unsigned, frozenset())
        for attr in unsigned:
            if attr["type"].native == "signature_time_stamp_token":
                for token in attr["values"]:
                    if token["content_type"].native != "signed_data":
                        raise ValueError("signature timestamp token is not a SignedData")
                    check_structure(token["content"], nested=True)


def check_structure(sd: cms.SignedData, nested: bool = False) -> None:
    """Parse what validation will read; raises one of :data:`PARSE_ERRORS` when the structure is broken."""
    sd["version"].native  # noqa: B018
    sd["digest_algorithms"].native  # noqa: B018
    eci = sd["encap_content_info"]
    eci["content_type"].native  # noqa: B018
    content = eci["content"]
    if not isinstance(content, core.Void):
        content.contents  # noqa: B018 - the eContent OCTET STRING (or its constructed BER form)
        if not isinstance(content, core.OctetString | core.ParsableOctetString):
            raise ValueError(f"eContent is a {type(content).__name__}, not an OCTET STRING")
    for choice in [] if isinstance(sd["certificates"], core.Void) else sd["certificates"]:
        cert = choice.chosen
        if choice.name == "certificate":
            tbs = cert["tbs_certificate"]
            tbs["serial_number"].native  # noqa: B018
            tbs["issuer"].native  # noqa: B018
            tbs["subject"].native  # noqa: B018
    for choice in [] if isinstance(sd["crls"], core.Void) else sd["crls"]:
        choice.chosen  # noqa: B018
    infos = sd["signer_infos"]
    for si in infos:
        _check_signer_info(si)
    if nested and len(infos) != 1:
        raise ValueError("a timestamp token has exactly one signer")


def load_signed_data(data: bytes) -> cms.SignedData | None:
    """The SignedData of a DER/BER (or PEM) CMS blob; a :class:`BrokenSignedData` when the blob claims
    to be one and its structure is damaged; None when it is not CMS."""
    if data[:11] == b"-----BEGIN ":
        try:
            _, _, data = pem.unarmor(data)
        except ValueError:
            return None
    if not data[:1] == b"\x30":
        return None
    claims = _claims_signed_data(data)
    try:
        info = cms.ContentInfo.load(data, strict=False)
        kind = info["content_type"].native
        if kind != "signed_data":
            return _mislabelled(data, kind)
        sd = info["content"]
        if not isinstance(sd, cms.SignedData):
            return broken("ContentInfo content is not a SignedData")
        check_structure(sd)
        return sd
    except PARSE_ERRORS as exc:
        return broken(f"damaged CMS structure: {type(exc).__name__}: {_first_line(exc)}") if claims else None


def _mislabelled(data: bytes, kind: str) -> cms.SignedData | None:
    """A SignedData under another ContentInfo type (a wrong or forged OID) is a damaged signature, not
    "no signature"; anything else is not CMS. Read by TLV: the declared type would make asn1crypto parse
    the content with that type's structure."""
    try:
        _, _, _, _, body, _ = parser.parse(data, strict=False)  # ContentInfo SEQUENCE
        oid = parser.parse(body, strict=False)
        tagged = parser.parse(body[len(oid[3]) + len(oid[4]) + len(oid[5]) :], strict=False)
        if tagged[:3] != (2, 1, 0):  # [0] EXPLICIT, constructed
            return None
        sd = cms.SignedData.load(tagged[4], strict=False)
        check_structure(sd)
        if len(sd["signer_infos"]) == 0:
            return None
    except PARSE_ERRORS:
        return None
    return broken(f"ContentInfo content type is {kind}, but the content is a SignedData")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else ""
