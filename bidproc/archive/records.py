"""RFC 4998 Evidence Records: a hash tree per batch of packages, sealed by one archive timestamp.

asn1crypto has no ERS module, so the ASN.1 below is RFC 4998 §3 / Appendix A written out by hand
(IMPLICIT TAGS, as the RFC's module declares); the hash tree (§4.2) and its check (§4.3) are hand
written too, since no maintained Python library implements them. The timestamps themselves are
ordinary RFC 3161 tokens, checked with pyhanko.

What a record covers: one data object per hash algorithm, given by the caller (``DataFor``). For a
package version that is, under SHA-256, its ``SHA256SUMS`` (which lists every other file of the
package); under a stronger algorithm H, the ``sha512sum -c``-style list of H(file) of *every* file of
the package (renewal.py builds it, verify.py recomputes it from the files), so that a chain under H
binds the files themselves, not a list that binds them with the weaker SHA-256 only (RFC 4998 §5.3:
the new tree's leaves are the data objects hashed with the new algorithm). Timestamp renewal (§5.2)
adds to the last chain an archive timestamp over the hash of the previous one's ``timeStamp``;
hash-tree renewal (§5.3, when an algorithm weakens) starts a new chain whose first archive timestamp
covers ``H(H(data_H) + H(ArchiveTimeStampSequence so far))`` with the new algorithm H. Many records
are renewed in one batch under one tree. Every archive timestamp of a chain uses the chain's
algorithm, its token's imprint too.
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


ALGORITHMS = ("sha256", "sha384", "sha512")  # weakest first: a hash-tree renewal only ever goes up


def _h(data: bytes, algorithm: str = "sha256") -> bytes:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported hash algorithm {algorithm}")
    return hashlib.new(algorithm, data).digest()


def _node(children: Sequence[bytes], algorithm: str = "sha256") -> bytes:
    """RFC 4998 §4.2 step 4: sort the children in binary ascending order, concatenate, hash."""
    return _h(b"".join(sorted(children)), algorithm)


def hash_tree(leaves: Sequence[bytes], algorithm: str = "sha256") -> tuple[bytes, list[list[list[bytes]]]]:
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
            nxt.append((_node([a, b], algorithm), under_a + under_b))
        level = nxt
    return level[0][0], paths


def root_of(leaf: bytes, reduced: Sequence[Sequence[bytes]], algorithm: str = "sha256") -> bytes | None:
    """RFC 4998 §4.3: the root a reduced tree leads to from ``leaf``, or None if the leaf is not in it."""
    if not reduced:
        return leaf
    if leaf not in reduced[0]:
        return None
    current = _node(reduced[0], algorithm)
    for partial in reduced[1:]:
        members = list(partial)
        if current not in members:  # the computed value becomes a member of the next list
            members.append(current)
        current = _node(members, algorithm)
    return current


Timestamper = Callable[[bytes, str], bytes]  # (digest, its algorithm) -> TimeStampResp (DER)
DataFor = Callable[[str], bytes]  # hash algorithm -> the data object a chain under it covers


def _ats(token: cms.ContentInfo, reduced: Sequence[Sequence[bytes]], algorithm: str) -> ArchiveTimeStamp:
    fields: dict[str, object] = {"digest_algorithm": {"algorithm": algorithm}, "time_stamp": token}
    if reduced:
        fields["reduced_hashtree"] = [[core.OctetString(h) for h in partial] for partial in reduced]
    return ArchiveTimeStamp(fields)


def _token(response_der: bytes) -> cms.ContentInfo:
    return tsp.TimeStampResp.load(response_der)["time_stamp_token"]


def new_records(datas: Sequence[bytes], timestamp: Timestamper, algorithm: str = "sha256") -> list[bytes]:
    """One evidence record (DER) per data object, all under one tree and one timestamp."""
    root, paths = hash_tree([_h(d, algorithm) for d in datas], algorithm)
    token = _token(timestamp(root, algorithm))
    return [
        EvidenceRecord({"version": 1, "digest_algorithms": [{"algorithm": algorithm}],
                        "archive_time_stamp_sequence": [[_ats(token, path, algorithm)]]}).dump()
        for path in paths
    ]


def chain_algorithm(chain: ArchiveTimeStampChain) -> str:
    """The chain's hash algorithm (its first archive timestamp's; absent means SHA-256, our default)."""
    first = chain[0]["digest_algorithm"]
    return str(first["algorithm"].native) if first.native else "sha256"


def record_algorithm(record_der: bytes) -> str:
    """The algorithm of the record's newest chain: what a timestamp renewal continues with."""
    return chain_algorithm(EvidenceRecord.load(record_der)["archive_time_stamp_sequence"][-1])


def _rebuilt(record: EvidenceRecord, chains: list[list[ArchiveTimeStamp]], algorithm: str) -> bytes:
    algorithms = [a["algorithm"].native for a in record["digest_algorithms"]]
    rebuilt = EvidenceRecord({"version": 1, "archive_time_stamp_sequence": chains,
                              "digest_algorithms": [{"algorithm": a} for a in dict.fromkeys([*algorithms, algorithm])]})
    return bytes(rebuilt.dump())


def renew(records: Sequence[bytes], timestamp: Timestamper) -> list[bytes]:
    """Timestamp renewal (§5.2) of many records at once, all of one algorithm (their newest chain's):
    each last chain gets one more archive timestamp over the hash of the previous one's token."""
    parsed = [EvidenceRecord.load(r) for r in records]
    algorithm = {chain_algorithm(r["archive_time_stamp_sequence"][-1]) for r in parsed}
    if len(algorithm) > 1:
        raise ValueError("one renewal batch, one hash algorithm")
    algo = algorithm.pop()
    leaves = [_h(r["archive_time_stamp_sequence"][-1][-1]["time_stamp"].dump(), algo) for r in parsed]
    root, paths = hash_tree(leaves, algo)
    token = _token(timestamp(root, algo))
    out = []
    for record, path in zip(parsed, paths, strict=True):
        chains = [list(chain) for chain in record["archive_time_stamp_sequence"]]
        chains[-1].append(_ats(token, path, algo))
        out.append(_rebuilt(record, chains, algo))
    return out


def _rehashed_leaf(data: bytes, sequence: ArchiveTimeStampSequence, algorithm: str) -> bytes:
    """§5.3 steps 2-4: h'(i) = H(H(d(i)) + H(atsc(i))), atsc the DER of the whole sequence so far."""
    return _h(_h(data, algorithm) + _h(sequence.dump(), algorithm), algorithm)


def renew_hash_tree(records: Sequence[bytes], datas: Sequence[bytes], timestamp: Timestamper,
                    algorithm: str) -> list[bytes]:
    """Hash-tree renewal (§5.3) of many records at once: each gets a new chain under ``algorithm``,
    whose first archive timestamp covers its data re-hashed together with everything before."""
    parsed = [EvidenceRecord.load(r) for r in records]
    leaves = [_rehashed_leaf(d, r["archive_time_stamp_sequence"], algorithm)
              for r, d in zip(parsed, datas, strict=True)]
    root, paths = hash_tree(leaves, algorithm)
    token = _token(timestamp(root, algorithm))
    out = []
    for record, path in zip(parsed, paths, strict=True):
        chains = [list(chain) for chain in record["archive_time_stamp_sequence"]]
        chains.append([_ats(token, path, algorithm)])
        out.append(_rebuilt(record, chains, algorithm))
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


def verify_record(record_der: bytes, data: bytes | DataFor, roots: Sequence[asn1_x509.Certificate]) -> RecordCheck:
    """Does the record prove that ``data`` existed, unchanged, since its first archive timestamp?

    ``data`` is the data object, or a function giving it per chain algorithm (see the module's doc).

    Each timestamp is checked at the time of the one after it (the last one now): an expired TSA
    certificate is fine as long as a later timestamp covered its token while it was still valid. A
    chain after the first (a hash-tree renewal) must cover the data re-hashed with its own algorithm
    together with every chain before it.
    """
    try:
        return _check_record(record_der, data, roots)
    except Exception as exc:  # a hostile record may break asn1crypto anywhere (lazy parsing): "not valid"
        return RecordCheck(False, f"not an RFC 4998 evidence record: {type(exc).__name__}: {exc}")


def _check_record(record_der: bytes, data: bytes | DataFor, roots: Sequence[asn1_x509.Certificate]) -> RecordCheck:
    try:
        record = EvidenceRecord.load(record_der)
        sequence = record["archive_time_stamp_sequence"]
        chains = list(sequence)
        if not chains or any(len(chain) == 0 for chain in chains):
            return RecordCheck(False, "a record without archive timestamps")
        times = [ats["time_stamp"]["content"]["encap_content_info"]["content"].parsed["gen_time"].native
                 for chain in chains for ats in chain]
        algorithms = [chain_algorithm(chain) for chain in chains]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return RecordCheck(False, f"not an RFC 4998 evidence record: {exc}")
    n = 0
    for k, (chain, algorithm) in enumerate(zip(chains, algorithms, strict=True)):
        if algorithm not in ALGORITHMS:
            return RecordCheck(False, f"archive timestamp {n + 1} uses an unsupported hash algorithm")
        obj = data if isinstance(data, bytes) else data(algorithm)
        covered = _h(obj, algorithm) if k == 0 else _rehashed_leaf(
            obj, ArchiveTimeStampSequence(chains[:k]), algorithm)
        for j, ats in enumerate(chain):
            if (ats["digest_algorithm"]["algorithm"].native if ats["digest_algorithm"].native else "sha256") \
                    != algorithm:
                return RecordCheck(False, f"archive timestamp {n + 1} changes algorithm within its chain")
            reduced = [[h.native for h in partial] for partial in ats["reduced_hashtree"]] \
                if ats["reduced_hashtree"].native else []
            root = root_of(covered, reduced, algorithm)
            if root is None:
                what = "the data" if j == 0 else f"archive timestamp {n}"
                return RecordCheck(False, f"archive timestamp {n + 1}'s hash tree does not contain {what} (altered)")
            why = _check_token(ats["time_stamp"], root, algorithm, roots, times[n + 1] if n + 1 < len(times) else None)
            if why:
                return RecordCheck(False, f"archive timestamp {n + 1}: {why}")
            covered = _h(ats["time_stamp"].dump(), algorithm)
            n += 1
    return RecordCheck(True, "", tuple(times))


def _check_token(token: cms.ContentInfo, root: bytes, algorithm: str, roots: Sequence[asn1_x509.Certificate],
                 moment: datetime | None) -> str:
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    info = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
    if info["hash_algorithm"]["algorithm"].native != algorithm or info["hashed_message"].native != root:
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
