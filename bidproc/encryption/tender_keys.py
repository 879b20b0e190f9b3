"""A tender's opening keys, as the service stores and uses them (the crypto is in committee.py, envelope.py).

Two modes, chosen when the tender is created:

- ``committee``: bidproc makes the tender's key pair and splits the secret protecting its private key
  among n members (any k open, see :mod:`bidproc.encryption.committee`). What is stored holds no share.
- ``recipients``: the buyer's own encryption certificates (a main one and a backup); any one private key
  opens, on the buyer's machine; bidproc never holds a private key and cannot open at all.

Strict mode (``process_at: "opening"``, committee only): a bid's files are sealed to the tender's
certificate from their first byte (:mod:`bidproc.desk.upload`) and processed only once opened
(:mod:`bidproc.desk.strict_opening`). Recipients mode cannot be strict: bidproc never holds the private
key, so it could never open the files to check them.

Default when a tender names no ``opening``: a committee of one member (``buyer``), k = 1. Its one
share is given once, in the 201 answer; bidproc keeps nothing that opens the bids without it. Fail
closed: a platform that loses the share loses the bids, rather than bidproc being able to read them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bidproc.encryption.committee import CommitteeKey, KeyAlgorithm, create_committee
from bidproc.encryption.envelope import seal_bytes
from bidproc.errors import BidprocError, Code

Mode = Literal["committee", "recipients"]
DEFAULT_MEMBER = "buyer"
MAX_RECIPIENTS = 8


def _pem_certificate(text: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise BidprocError(Code.REQUEST_INVALID, f"{what} is not a PEM certificate") from None


ProcessAt = Literal["receipt", "opening"]


def is_strict(stored: Mapping[str, Any] | None) -> bool:
    """Strict mode: the tender's bids are sealed from their first byte and processed after the opening."""
    return stored is not None and stored.get("process_at") == "opening"


def setup(tender_id: str, spec: Mapping[str, Any] | None,
          process_at: ProcessAt = "receipt") -> tuple[dict[str, Any], list[dict[str, str]]]:
    """What the tender row stores, and the shares to give once (empty in recipients mode)."""
    spec = dict(spec or {"mode": "committee", "threshold": 1, "members": [DEFAULT_MEMBER]})
    mode = spec.get("mode")
    if process_at == "opening" and mode != "committee":
        raise BidprocError(Code.REQUEST_INVALID,
                           "process_at 'opening' (strict mode) needs opening.mode 'committee': in recipients mode "
                           "bidproc never holds the private key, so it could never open the bids to check them "
                           "(malware scan, signature verification) after the opening")
    if mode == "recipients":
        pems = list(spec.get("certificates") or [])
        if not 1 <= len(pems) <= MAX_RECIPIENTS:
            raise BidprocError(Code.REQUEST_INVALID, f"recipients mode needs 1 to {MAX_RECIPIENTS} certificates")
        certs = [_pem_certificate(p, f"certificate {i}") for i, p in enumerate(pems, start=1)]
        seal_bytes(b"", certs)  # refuses now (seal.recipient_unsupported) a certificate nothing could be sealed to
        return {"mode": "recipients",
                "certificates": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                                 for c in certs]}, []
    if mode != "committee":
        raise BidprocError(Code.REQUEST_INVALID, "opening.mode must be 'committee' or 'recipients'")
    members = [str(m) for m in spec.get("members") or []]
    threshold = int(spec.get("threshold") or 0)
    algorithm: KeyAlgorithm = spec.get("algorithm") or "p256"
    member_certs = {name: _pem_certificate(pem, f"member certificate of {name!r}")
                    for name, pem in (spec.get("member_certificates") or {}).items()}
    made = create_committee(tender_id, threshold, members, algorithm=algorithm, member_certificates=member_certs)
    shares: list[dict[str, str]] = []
    for share in made.shares:
        if share.share is not None:
            shares.append({"member": share.member, "share": share.share})
        else:
            assert share.sealed is not None
            shares.append({"member": share.member, "sealed_share": base64.b64encode(share.sealed).decode()})
    stored: dict[str, Any] = {"mode": "committee", "key": made.key.to_dict()}
    if process_at == "opening":
        stored["process_at"] = "opening"
    return stored, shares


def certificates(stored: Mapping[str, Any]) -> list[x509.Certificate]:
    """The certificates every sealed object of the tender is addressed to."""
    if stored["mode"] == "committee":
        return [committee_key(stored).certificate]
    return [x509.load_der_x509_certificate(base64.b64decode(c)) for c in stored["certificates"]]


def committee_key(stored: Mapping[str, Any]) -> CommitteeKey:
    if stored.get("mode") != "committee":
        raise BidprocError(Code.OPENING_OFFLINE,
                           "this tender opens with the buyer's own keys, offline: download the sealed files")
    return CommitteeKey.from_dict(stored["key"])


def public_view(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What GET shows: the mode, the committee, the certificates (PEM) and their fingerprints; no share."""
    if stored is None:
        return None
    certs = certificates(stored)
    view: dict[str, Any] = {
        "mode": stored["mode"],
        "certificates": [c.public_bytes(serialization.Encoding.PEM).decode() for c in certs],
        "fingerprints": [c.fingerprint(hashes.SHA256()).hex() for c in certs],
    }
    if stored["mode"] == "committee":
        key = committee_key(stored)
        view |= {"threshold": key.threshold, "members": list(key.members)}
    view["process_at"] = "opening" if is_strict(stored) else "receipt"
    return view


def members_of(stored: Mapping[str, Any]) -> Sequence[str]:
    return committee_key(stored).members if stored.get("mode") == "committee" else ()
