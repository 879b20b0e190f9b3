"""A tender's opening key held by a committee: any k of its n members open it, fewer learn nothing.

bidproc creates the tender's key pair, encrypts the private key (PKCS#8 DER, AES-256-GCM) under a
random 256-bit secret, splits that secret into n shares, hands each member their share once and keeps
only the public certificate, the encrypted private key and per-share verification digests.

Shamir library: ``shamir-mnemonic`` (SLIP-39, Trezor's reference implementation), chosen over
pycryptodome's ``Protocol.SecretSharing.Shamir`` because
- it shares a 256-bit secret in one split (pycryptodome's is for 16-byte secrets only: two splits
  and our own glue to keep them paired);
- each share is words with an RS1024 checksum: a mistyped share is told apart from a forged one;
- shares carry the split's identifier (shares of two tenders never combine) and, for k >= 2, the
  split embeds a digest of the secret, so a wrong combination is detected (with 2^-32 odds) by the
  library itself.
On top of that bidproc binds the shares to the tender: a SHA-256 digest of each share's value (with
the tender id) is stored, so a share from another tender or an altered share is named before
anything is combined, and the private key's GCM associated data is the tender id and certificate.
A share value is 256 uniformly random bits (or a point determined by the secret), so its digest
gives no way to rebuild the key without k shares.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import shamir_mnemonic
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

from bidproc.encryption.envelope import seal_bytes
from bidproc.encryption.recipients import PrivateKey
from bidproc.errors import BidprocError, Code

KeyAlgorithm = Literal["rsa3072", "p256"]
MAX_MEMBERS = 16  # SLIP-39's limit per group
CERT_VALIDITY = timedelta(days=10 * 365)  # must outlive the deadline and any re-opening for a dispute


def _quorum(message: str) -> BidprocError:
    return BidprocError(Code.OPENING_QUORUM, message)


def _normalise(share: str) -> str:
    return " ".join(share.lower().split())


def _share_digest(tender_id: str, value: bytes) -> str:
    return hashlib.sha256(b"bidproc committee share v1\0" + tender_id.encode() + b"\0" + value).hexdigest()


def _binding(tender_id: str, certificate_der: bytes) -> bytes:
    return b"bidproc tender key v1\0" + tender_id.encode() + b"\0" + hashlib.sha256(certificate_der).digest()


def _wrapping_key(secret: bytes, tender_id: str) -> AESGCM:
    info = b"bidproc committee key v1\0" + tender_id.encode()
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret))


@dataclass(frozen=True)
class CommitteeKey:
    """What bidproc keeps for a committee tender: nothing from which the private key can be rebuilt."""

    tender_id: str
    threshold: int
    members: tuple[str, ...]  # member i holds the share of SLIP-39 member index i
    certificate_der: bytes
    sealed_private_key: bytes  # nonce(12) || AES-256-GCM(PKCS#8 DER), AAD = tender id + certificate
    identifier: int  # SLIP-39 identifier of this tender's split
    share_digests: tuple[str, ...]  # per member index, see _share_digest

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.certificate_der)

    def to_dict(self) -> dict[str, Any]:
        return {"tender_id": self.tender_id, "threshold": self.threshold, "members": list(self.members),
                "certificate": base64.b64encode(self.certificate_der).decode(),
                "sealed_private_key": base64.b64encode(self.sealed_private_key).decode(),
                "identifier": self.identifier, "share_digests": list(self.share_digests)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CommitteeKey:
        return cls(tender_id=data["tender_id"], threshold=int(data["threshold"]), members=tuple(data["members"]),
                   certificate_der=base64.b64decode(data["certificate"]),
                   sealed_private_key=base64.b64decode(data["sealed_private_key"]),
                   identifier=int(data["identifier"]), share_digests=tuple(data["share_digests"]))


@dataclass(frozen=True)
class MemberShare:
    """One member's share, given once: in clear, or sealed to the member's certificate (CMS, DER)."""

    member: str
    share: str | None
    sealed: bytes | None = None


@dataclass(frozen=True)
class CommitteeSetup:
    key: CommitteeKey
    shares: tuple[MemberShare, ...]


def _new_key(algorithm: KeyAlgorithm) -> PrivateKey:
    if algorithm == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise BidprocError(Code.REQUEST_INVALID, f"unknown opening key algorithm {algorithm!r}")


def _self_signed(key: PrivateKey, tender_id: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bidproc tender {tender_id} opening key")])
    now = datetime.now(UTC)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=is_rsa,
                          data_encipherment=False, key_agreement=not is_rsa, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CERT_VALIDITY).add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def create_committee(tender_id: str, threshold: int, members: Sequence[str], *,
                     algorithm: KeyAlgorithm = "rsa3072",
                     member_certificates: Mapping[str, x509.Certificate] | None = None) -> CommitteeSetup:
    """A new opening key for ``tender_id`` and its n shares (returned once: bidproc keeps none)."""
    names = [m.strip() for m in members]
    if not 1 <= len(names) <= MAX_MEMBERS or any(not m for m in names) or len(set(names)) != len(names):
        raise BidprocError(Code.REQUEST_INVALID, f"a committee is 1 to {MAX_MEMBERS} distinct, named members")
    if not 1 <= threshold <= len(names) or (threshold == 1 and len(names) > 1):
        # k = 1 of n > 1 would give every member the whole secret: that is recipients mode, not a committee
        raise BidprocError(Code.REQUEST_INVALID, "threshold must be between 2 and the number of members")
    unknown = set(member_certificates or {}) - set(names)
    if unknown:
        raise BidprocError(Code.REQUEST_INVALID, f"certificates for non-members: {sorted(unknown)}")
    key = _new_key(algorithm)
    cert_der = _self_signed(key, tender_id).public_bytes(serialization.Encoding.DER)
    secret = os.urandom(32)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    nonce = os.urandom(12)
    sealed_key = nonce + _wrapping_key(secret, tender_id).encrypt(nonce, pkcs8, _binding(tender_id, cert_der))
    mnemonics = shamir_mnemonic.generate_mnemonics(1, [(threshold, len(names))], secret)[0]
    del secret, pkcs8, key  # Python cannot wipe them; nothing keeps a reference past this point
    parsed = [shamir_mnemonic.Share.from_mnemonic(m) for m in mnemonics]
    record = CommitteeKey(tender_id=tender_id, threshold=threshold, members=tuple(names),
                          certificate_der=cert_der, sealed_private_key=sealed_key, identifier=parsed[0].identifier,
                          share_digests=tuple(_share_digest(tender_id, s.value) for s in parsed))
    shares = []
    for name, mnemonic in zip(names, mnemonics, strict=True):
        member_cert = (member_certificates or {}).get(name)
        if member_cert is None:
            shares.append(MemberShare(name, mnemonic))
        else:  # the member opens it with their own key: openssl cms -decrypt -inform DER ...
            shares.append(MemberShare(name, None, seal_bytes(mnemonic.encode() + b"\n", [member_cert])))
    return CommitteeSetup(record, tuple(shares))


def _check_share(key: CommitteeKey, position: int, text: str) -> shamir_mnemonic.Share:
    try:
        share = shamir_mnemonic.Share.from_mnemonic(_normalise(text))
    except shamir_mnemonic.MnemonicError:
        # ``from None``: the library's message quotes the share's words, which must not reach a log
        raise _quorum(f"share {position} is not a valid share (mistyped or not SLIP-39)") from None
    if share.identifier != key.identifier:
        raise _quorum(f"share {position} belongs to another tender")
    if (share.group_threshold, share.group_count, share.member_threshold) != (1, 1, key.threshold) \
            or not 0 <= share.index < len(key.share_digests):
        raise _quorum(f"share {position} does not fit this tender's committee")
    if not hmac.compare_digest(_share_digest(key.tender_id, share.value), key.share_digests[share.index]):
        raise _quorum(f"share {position} is not one issued for this tender (altered or forged)")
    return share


def combine(key: CommitteeKey, shares: Sequence[str]) -> PrivateKey:
    """The tender's private key from at least k distinct, genuine shares; ``opening.quorum`` otherwise.

    Every share is checked first; one bad share refuses the whole attempt (nothing is combined).
    """
    checked = [_check_share(key, i, text) for i, text in enumerate(shares, start=1)]
    seen: dict[int, int] = {}
    for position, share in enumerate(checked, start=1):
        if share.index in seen:
            raise _quorum(f"share {position} is the same as share {seen[share.index]} "
                          f"({key.members[share.index]}'s, given twice)")
        seen[share.index] = position
    if len(checked) < key.threshold:
        raise _quorum(f"{len(checked)} valid share(s) given, {key.threshold} needed")
    try:
        # exactly k shares: SLIP-39 refuses more than the threshold
        secret = shamir_mnemonic.combine_mnemonics([s.mnemonic() for s in checked[: key.threshold]])
    except shamir_mnemonic.MnemonicError:
        raise _quorum("the shares do not combine") from None
    nonce, sealed = key.sealed_private_key[:12], key.sealed_private_key[12:]
    try:
        binding = _binding(key.tender_id, key.certificate_der)
        pkcs8 = _wrapping_key(secret, key.tender_id).decrypt(nonce, sealed, binding)
    except InvalidTag as exc:
        raise _quorum("the shares do not open this tender's key") from exc
    finally:
        del secret
    private = serialization.load_der_private_key(pkcs8, None)
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BidprocError(Code.INTERNAL_ERROR, "the tender key is of an unexpected type")
    return private
