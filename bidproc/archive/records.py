"""RFC 4998 Evidence Records: a hash tree per batch of packages, sealed by one archive timestamp.

asn1crypto has no ERS module, so the ASN.1 below is RFC 4998 §3 / Appendix A written out by hand
(IMPLICIT TAGS, as the RFC's module declares); the hash tree (§4.2) and its check (§4.3) are hand
written too, since no maintained Python library implements them. The timestamps themselves are
ordinary RFC 3161 tokens, checked with pyhanko.

What a record covers: the SHA-256 of one package version's ``SHA256SUMS`` (which lists every other
file of the package). Renewal (§5.2) adds to the chain an archive timestamp over the hash of the
previous one's ``timeStamp``; many records are renewed in one batch under one tree.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509


class PartialHashtree(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.OctetString


class ReducedHashtree(core.SequenceOf):  # type: ignore[misc]
    _child_spec = PartialHashtree


class ArchiveTimeStamp(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("digest_algorithm", algos.DigestAlgorithm, {"implicit": 0, "optional": True}),
        ("attributes", cms.CMSAttributes, {"implicit": 1, "optional": True}),
        ("reduced_hashtree", ReducedHashtree, {"implicit": 2, "optional": True}),
        ("time_stamp", cms.ContentInfo),
    ]


class ArchiveTimeStampChain(core.SequenceOf):  # type: ignore[misc]
    _child_spec = ArchiveTimeStamp


class ArchiveTimeStampSequence(core.SequenceOf):  # type: ignore[misc]
    _child_spec = ArchiveTimeStampChain


class DigestAlgorithms(core.SequenceOf):  # type: ignore[misc]
    _child_spec = algos.DigestAlgorithm


class CryptoInfos(core.SequenceOf):  # type: ignore[misc]
    _child_spec = cms.CMSAttribute


class EncryptionInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("encryption_info_type", core.ObjectIdentifier),
        ("encryption_info_value", core.Any),
    ]


class EvidenceRecord(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("version", core.Integer),
        ("digest_algorithms", DigestAlgorithms),
        ("crypto_infos", CryptoInfos, {"implicit": 0, "optional": True}),
        ("encryption_info", EncryptionInfo, {"implicit": 1, "optional": True}),
        ("archive_time_stamp_sequence", ArchiveTimeStampSequence),
    ]


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(children: Sequence[bytes]) -> bytes:
    """RFC 4998 §4.2 step 4: sort the children in binary ascending order, concatenate, hash."""
    return _h(b"".join(sorted(children)))


def hash_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[list[bytes]]]]:
    """A binary tree over ``leaves``: its root and, per leaf, the reduced tree (§4.2) proving it.

    A single leaf is its own root, with an empty reduced tree (the timestamp covers it directly).
    """
    paths: list[list[list[bytes]]] = [[] for _ in leaves]
    level = [(leaf, [i]) for i, leaf in enumerate(leaves)]  # node hash, leaves under it
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 2):
            pair = level[j:j + 2]
            if len(pair) == 1:  # an odd node goes up unchanged
                nxt.append(pair[0])
                continue
            (a, under_a), (b, under_b) = pair
            for own, other, under in ((a, b, under_a), (b, a, under_b)):
                for i in under:
                    # The first list holds the leaf itself and its sibling; higher lists only siblings.
                    paths[i].append(sorted([own, other]) if not paths[i] else [other])
            nxt.append((_node([a, b]), under_a + under_b))
        level = nxt
    return level[0][0], paths


def root_of(leaf: bytes, reduced: Sequence[Sequence[bytes]]) -> bytes | None:
    """RFC 4998 §4.3: the root a reduced tree leads to from ``leaf``, or None if the leaf is not in it."""
    if not reduced:
        return leaf
    if leaf not in reduced[0]:
        return None
    current = _node(reduced[0])
    for partial in reduced[1:]:
        members = list(partial)
        if current not in members:  # the computed value becomes a member of the next list
            members.append(current)
        current = _node(members)
    return current


Timestamper = Callable[[bytes], bytes]  # SHA-256 digest -> TimeStampResp (DER)


def _ats(token: cms.ContentInfo, reduced: Sequence[Sequence[bytes]]) -> ArchiveTimeStamp:
    fields: dict[str, object] = {"digest_algorithm": {"algorithm": "sha256"}, "time_stamp": token}
    if reduced:
        fields["reduced_hashtree"] = [[core.OctetString(h) for h in partial] for partial in reduced]
    return ArchiveTimeStamp(fields)


def _token(response_der: bytes) -> cms.ContentInfo:
    return tsp.TimeStampResp.load(response_der)["time_stamp_token"]


def new_records(leaves: Sequence[bytes], timestamp: Timestamper) -> list[bytes]:
    """One evidence record (DER) per leaf hash, all under one tree and one timestamp."""
    root, paths = hash_tree(leaves)
    token = _token(timestamp(root))
    return [
        EvidenceRecord({"version": 1, "digest_algorithms": [{"algorithm": "sha256"}],
                        "archive_time_stamp_sequence": [[_ats(token, path)]]}).dump()
        for path in paths
    ]


def renew(records: Sequence[bytes], timestamp: Timestamper) -> list[bytes]:
    """Timestamp renewal (§5.2) of many records at once: each chain gets one more archive timestamp."""
    parsed = [EvidenceRecord.load(r) for r in records]
    leaves = [_h(r["archive_time_stamp_sequence"][-1][-1]["time_stamp"].dump()) for r in parsed]
    root, paths = hash_tree(leaves)
    token = _token(timestamp(root))
    out = []
    for record, path in zip(parsed, paths, strict=True):
        chains = [list(chain) for chain in record["archive_time_stamp_sequence"]]
        chains[-1].append(_ats(token, path))
        out.append(EvidenceRecord({"version": 1, "digest_algorithms": record["digest_algorithms"],
                                   "archive_time_stamp_sequence": chains}).dump())
    return out


@dataclass(frozen=True)
class RecordCheck:
    ok: bool
    reason: str
    times: tuple[datetime, ...] = ()  # each archive timestamp's time, oldest first

    @property
    def first(self) -> datetime | None:
        return self.times[0] if self.times else None


def last_tsa_expiry(record_der: bytes) -> datetime | None:
    """When the certificate that signed the newest archive timestamp expires (renew before that)."""
    token = EvidenceRecord.load(record_der)["archive_time_stamp_sequence"][-1][-1]["time_stamp"]
    signed = token["content"]
    serial = signed["signer_infos"][0]["sid"].chosen["serial_number"].native
    for cert in signed["certificates"] or []:
        if isinstance(cert.chosen, asn1_x509.Certificate) and cert.chosen.serial_number == serial:
            expiry: datetime = cert.chosen["tbs_certificate"]["validity"]["not_after"].native
            return expiry
    return None


def verify_record(record_der: bytes, data: bytes, roots: Sequence[asn1_x509.Certificate]) -> RecordCheck:
    """Does the record prove that ``data`` existed, unchanged, since its first archive timestamp?

    Each timestamp is checked at the time of the one after it (the last one now): an expired TSA
    certificate is fine as long as a later timestamp covered its token while it was still valid.
    """
    try:
        record = EvidenceRecord.load(record_der)
        chains = list(record["archive_time_stamp_sequence"])
        stamps = [ats for chain in chains for ats in chain]
        if len(chains) != 1 or not stamps:
            return RecordCheck(False, "only records with one SHA-256 chain are supported")
        times = [ats["time_stamp"]["content"]["encap_content_info"]["content"].parsed["gen_time"].native
                 for ats in stamps]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return RecordCheck(False, f"not an RFC 4998 evidence record: {exc}")
    covered = _h(data)
    for n, ats in enumerate(stamps):
        if ats["digest_algorithm"].native and ats["digest_algorithm"]["algorithm"].native != "sha256":
            return RecordCheck(False, f"archive timestamp {n + 1} uses an unsupported hash algorithm")
        reduced = [[h.native for h in partial] for partial in ats["reduced_hashtree"]] \
            if ats["reduced_hashtree"].native else []
        root = root_of(covered, reduced)
        if root is None:
            what = "the data" if n == 0 else f"archive timestamp {n}"
            return RecordCheck(False, f"archive timestamp {n + 1}'s hash tree does not contain {what} (altered)")
        moment = times[n + 1] if n + 1 < len(times) else None
        why = _check_token(ats["time_stamp"], root, roots, moment)
        if why:
            return RecordCheck(False, f"archive timestamp {n + 1}: {why}")
        covered = _h(ats["time_stamp"].dump())
    return RecordCheck(True, "", tuple(times))


def _check_token(token: cms.ContentInfo, root: bytes, roots: Sequence[asn1_x509.Certificate],
                 moment: datetime | None) -> str:
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    info = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
    if info["hash_algorithm"]["algorithm"].native != "sha256" or info["hashed_message"].native != root:
        return "the timestamp covers another hash tree root"
    context = ValidationContext(trust_roots=list(roots), allow_fetching=False, revocation_mode="soft-fail",
                                moment=moment)
    try:
        status = asyncio.run(validate_tst_signed_data(token["content"], context, lambda _algo: root))
    except Exception as exc:  # any failure of a hostile token means "not valid"
        return f"timestamp does not validate: {exc}"
    if not (status.get("intact") and status.get("valid")):
        return "timestamp signature is not valid"
    if status.get("validation_path") is None or status.get("trust_problem_indic") is not None:
        return "timestamp authority does not chain to the given roots"
    return ""
