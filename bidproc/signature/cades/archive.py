"""CAdES archive-time-stamp-v3 (ETSI EN 319 122-1 §5.5.2, §5.5.3): what its message imprint must be.

Hand-written: pyhanko 0.38 knows no CAdES archive timestamp. pyhanko still validates the token itself
(``ades.ades_timestamp_validation``: TSA signature, TSA chain and revocation, and the comparison of the
token's message imprint with the value computed here); this module only computes that value.

The imprint input is the concatenation, each field in its encoding as found (tag, length, value):
  1. SignedData.encapContentInfo.eContentType;
  2. the hash of the signed data (eContent's value octets, or the detached data), with the
     imprint's hash algorithm;
  3. version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm and signature of the SignerInfo
     the archive timestamp is on, in that order;
  4. the ATSHashIndexV3 value of the ats-hash-index-v3 unsigned attribute of the timestamp token.
The index lists the hash of every certificate (CertificateChoices) and revocation entry
(RevocationInfoChoice) of the SignedData, and of every unsigned attribute value of the SignerInfo
(attrType || one AttributeValue) present when the timestamp was taken. Items added later (new
validation data, later archive timestamps) are legitimately absent from it; an indexed item that is no
longer present means what the timestamp covered was removed or changed, and the timestamp is rejected.

Only v3 is verified: archive-time-stamp-v2 (TS 101 733) and the older ats-hash-index versions are left
unverified, and B-LTA is then not claimed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

ARCHIVE_TS_V3 = "0.4.0.1733.2.4"  # id-aa-ets-archiveTimestampV3
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"  # id-aa-ATSHashIndex-v3
DEFAULT_INDEX_HASH = "sha256"  # ATSHashIndexV3.hashIndAlgorithm DEFAULT {algorithm id-sha256}


class _AnyList(core.SequenceOf):  # type: ignore[misc]  # asn1crypto is untyped
    _child_spec = core.Any


class _OctetStrings(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.OctetString


class ArchiveTimestampError(ValueError):
    """The archive timestamp cannot cover this signature as it now is (the reason is the message)."""


@dataclass(frozen=True)
class HashIndex:
    algorithm: str
    certificates: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    unsigned_attr_values: tuple[bytes, ...]
    encoded: bytes  # the ATSHashIndexV3 value as found in the token


def _hash(algorithm: str, data: bytes) -> bytes:
    h = hashes.Hash(get_pyca_cryptography_hash(algorithm))
    h.update(data)
    return h.finalize()


def parse_hash_index(value: bytes) -> HashIndex:
    """ATSHashIndexV3; parsed by position because hashIndAlgorithm (DEFAULT) and the hash lists are all
    SEQUENCEs, which asn1crypto's tag-driven optional-field matching cannot tell apart."""
    items = list(_AnyList.load(value, strict=True))
    algorithm = DEFAULT_INDEX_HASH
    if len(items) == 4:
        algorithm = algos.DigestAlgorithm.load(items[0].dump())["algorithm"].native
        items = items[1:]
    if len(items) != 3:
        raise ArchiveTimestampError("ats-hash-index-v3 is not an ATSHashIndexV3")
    certs, crls, attrs = (tuple(bytes(o.native) for o in _OctetStrings.load(i.dump())) for i in items)
    return HashIndex(algorithm, certs, crls, attrs, value)


def hash_index_of(tst: cms.ContentInfo) -> HashIndex:
    """The single ats-hash-index-v3 unsigned attribute of the token's (single) SignerInfo."""
    signer_infos = tst["content"]["signer_infos"]
    if len(signer_infos) != 1:
        raise ArchiveTimestampError("the archive timestamp token does not have exactly one signer")
    attrs = signer_infos[0]["unsigned_attrs"]
    values = (
        []
        if isinstance(attrs, core.Void)
        else [v for a in attrs if a["type"].dotted == ATS_HASH_INDEX_V3 for v in a["values"]]
    )
    if len(values) != 1:
        raise ArchiveTimestampError(
            "the archive timestamp token has no ats-hash-index-v3 attribute (older index versions are not verified)"
            if not values
            else "the archive timestamp token has several ats-hash-index-v3 values"
        )
    return parse_hash_index(values[0].dump())


def _check_covered(kind: str, indexed: tuple[bytes, ...], present: list[bytes], algorithm: str) -> None:
    """Every indexed hash must be the hash of a distinct item present now (multiset inclusion)."""
    missing = Counter(indexed) - Counter(_hash(algorithm, item) for item in present)
    if missing:
        raise ArchiveTimestampError(
            f"{sum(missing.values())} {kind} covered by the archive timestamp no longer in the signature"
        )


def _unsigned_attr_values(si: cms.SignerInfo) -> list[bytes]:
    attrs = si["unsigned_attrs"]
    if isinstance(attrs, core.Void):
        return []
    return [a["type"].dump() + v.dump() for a in attrs for v in a["values"]]


def _signed_data_items(sd: cms.SignedData, field: str) -> list[bytes]:
    value = sd[field]
    return [] if isinstance(value, core.Void) else [item.dump() for item in value]


SIGNER_INFO_FIELDS = ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature")


def expected_imprint(
    sd: cms.SignedData, si: cms.SignerInfo, signed_content: bytes, index: HashIndex
) -> Callable[[str], bytes]:
    """For pyhanko's ``expected_tst_imprint``: the imprint the archive timestamp must carry, by algorithm.

    Raises :class:`ArchiveTimestampError` when an item the index covers is gone.
    """
    _check_covered("certificate(s)", index.certificates, _signed_data_items(sd, "certificates"), index.algorithm)
    _check_covered("revocation entry(ies)", index.crls, _signed_data_items(sd, "crls"), index.algorithm)
    _check_covered(
        "unsigned attribute value(s)", index.unsigned_attr_values, _unsigned_attr_values(si), index.algorithm
    )

    def imprint(algorithm: str) -> bytes:
        if algorithm != index.algorithm:  # EN 319 122-1 §5.5.2: the index uses the imprint's algorithm
            return b""  # never equal to a real imprint: the token is reported not intact
        parts = [
            sd["encap_content_info"]["content_type"].dump(),
            _hash(algorithm, signed_content),
            *(si[name].dump() for name in SIGNER_INFO_FIELDS),
            index.encoded,
        ]
        return _hash(algorithm, b"".join(parts))

    return imprint


def archive_timestamps(si: cms.SignerInfo) -> list[cms.ContentInfo]:
    """The archive-time-stamp-v3 tokens on a SignerInfo, in order of appearance."""
    attrs = si["unsigned_attrs"]
    if isinstance(attrs, core.Void):
        return []
    out = []
    for attr in attrs:
        if attr["type"].dotted == ARCHIVE_TS_V3:
            for value in attr["values"]:
                out.append(cms.ContentInfo.load(value.dump()))
    return out
