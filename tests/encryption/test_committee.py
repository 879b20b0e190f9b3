"""Committee k-of-n: any k genuine shares open the tender key; anything less is refused (opening.quorum)."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest
import shamir_mnemonic
from cryptography.hazmat.primitives import serialization

from bidproc.encryption.committee import CommitteeKey, CommitteeSetup, combine, create_committee
from bidproc.encryption.envelope import seal_bytes, unseal
from bidproc.errors import BidprocError, Code
from tests.encryption.conftest import Holder, openssl_decrypt

MEMBERS = ["alice", "bob", "carol"]


@pytest.fixture(scope="module")
def tender() -> CommitteeSetup:
    return create_committee("T-2026-001", 2, MEMBERS, algorithm="p256")


@pytest.fixture(scope="module")
def other_tender() -> CommitteeSetup:
    return create_committee("T-2026-002", 2, MEMBERS, algorithm="p256")


def _texts(setup: CommitteeSetup) -> list[str]:
    texts = [s.share for s in setup.shares]
    assert all(t is not None for t in texts)
    return [t for t in texts if t is not None]


def _opens(key: CommitteeKey, shares: list[str]) -> None:
    """The combined key opens an envelope sealed to the tender certificate."""
    private = combine(key, shares)
    data = os.urandom(5000)
    out = io.BytesIO()
    unseal(io.BytesIO(seal_bytes(data, [key.certificate])), out, private, key.certificate)
    assert out.getvalue() == data


def _quorum(key: CommitteeKey, shares: list[str]) -> str:
    with pytest.raises(BidprocError) as info:
        combine(key, shares)
    assert info.value.code is Code.OPENING_QUORUM
    return info.value.message


def test_any_two_of_three_open(tender: CommitteeSetup) -> None:
    shares = _texts(tender)
    assert [s.member for s in tender.shares] == MEMBERS
    for pair in itertools.permutations(shares, 2):
        _opens(tender.key, list(pair))
    _opens(tender.key, shares)  # more than k is fine


def test_shares_are_tolerant_of_spacing_and_case(tender: CommitteeSetup) -> None:
    a, b, _ = _texts(tender)
    _opens(tender.key, ["  " + a.upper().replace(" ", "\n  "), b])


def test_one_share_is_not_enough(tender: CommitteeSetup) -> None:
    for share in _texts(tender):
        assert "needed" in _quorum(tender.key, [share])
    assert "needed" in _quorum(tender.key, [])


def test_same_share_twice_is_refused(tender: CommitteeSetup) -> None:
    a, b, _ = _texts(tender)
    assert "twice" in _quorum(tender.key, [a, a])
    assert "twice" in _quorum(tender.key, [a, " ".join(a.split()).upper()])  # same share, other spelling
    assert "twice" in _quorum(tender.key, [a, b, a])  # even with k others present


def test_share_of_another_tender_is_refused(tender: CommitteeSetup, other_tender: CommitteeSetup) -> None:
    mine, theirs = _texts(tender), _texts(other_tender)
    assert "another tender" in _quorum(tender.key, [mine[0], theirs[1]])
    assert "another tender" in _quorum(tender.key, theirs[:2])
    assert "another tender" in _quorum(other_tender.key, mine[1:])


def test_other_tender_with_a_colliding_identifier_is_still_refused(tender: CommitteeSetup,
                                                                   other_tender: CommitteeSetup) -> None:
    """Even if two tenders drew the same 15-bit SLIP-39 identifier, the stored digests tell them apart."""
    forged_key = CommitteeKey(**{**tender.key.__dict__, "identifier": other_tender.key.identifier})
    assert "altered or forged" in _quorum(forged_key, _texts(other_tender)[:2])


def _reencoded(text: str, **changes: object) -> str:
    share = shamir_mnemonic.Share.from_mnemonic(text)
    fields = {**share.__dict__, **changes}
    return str(shamir_mnemonic.Share(**fields).mnemonic())


def test_forged_shares_are_refused(tender: CommitteeSetup) -> None:
    a, b, _c = _texts(tender)
    value = bytearray(shamir_mnemonic.Share.from_mnemonic(b).value)
    value[0] ^= 0x01
    forged_value = _reencoded(b, value=bytes(value))  # valid checksum, altered value
    assert "altered or forged" in _quorum(tender.key, [a, forged_value])
    wrong_index = _reencoded(b, index=7)  # claims to be member 8 of 3
    assert "does not fit" in _quorum(tender.key, [a, wrong_index])
    wrong_threshold = _reencoded(b, member_threshold=3)
    assert "does not fit" in _quorum(tender.key, [a, wrong_threshold])
    words = b.split()
    words[5] = "academic" if words[5] != "academic" else "acid"  # a mistyped word: checksum fails
    assert "not a valid share" in _quorum(tender.key, [a, " ".join(words)])
    words[9] = "acadmic"  # not a word at all: the refusal must not quote it (nor carry a cause that does)
    with pytest.raises(BidprocError) as info:
        combine(tender.key, [a, " ".join(words)])
    assert "acadmic" not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__
    assert "not a valid share" in _quorum(tender.key, [a, "not a share at all"])


def test_altered_stored_key_is_refused(tender: CommitteeSetup) -> None:
    a, b, _ = _texts(tender)
    sealed = bytearray(tender.key.sealed_private_key)
    sealed[40] ^= 0x01
    altered = CommitteeKey(**{**tender.key.__dict__, "sealed_private_key": bytes(sealed)})
    assert "do not open" in _quorum(altered, [a, b])
    renamed = CommitteeKey(**{**tender.key.__dict__, "tender_id": "T-2026-999"})  # key record moved to a tender
    assert _quorum(renamed, [a, b])


def test_stored_record_holds_no_share(tender: CommitteeSetup) -> None:
    stored = json.dumps(tender.key.to_dict())
    for text in _texts(tender):
        share = shamir_mnemonic.Share.from_mnemonic(text)
        assert text not in stored
        assert share.value.hex() not in stored
        assert " ".join(text.split()[4:8]) not in stored
    assert "PRIVATE" not in stored
    restored = CommitteeKey.from_dict(json.loads(stored))
    assert restored == tender.key
    _opens(restored, _texts(tender)[1:])


def test_committee_configuration_is_checked() -> None:
    for threshold, members in [(0, MEMBERS), (4, MEMBERS), (1, MEMBERS), (2, ["a", "a", "b"]), (2, ["a", " "]),
                               (2, [f"m{i}" for i in range(17)])]:
        with pytest.raises(BidprocError) as info:
            create_committee("T", threshold, members, algorithm="p256")
        assert info.value.code is Code.REQUEST_INVALID


def test_rsa_committee_key_opens_with_openssl(tmp_path: Path) -> None:
    """The default (RSA-3072) tender key: what is sealed to it, openssl opens with the combined key."""
    setup = create_committee("T-RSA", 2, MEMBERS)
    assert setup.key.certificate.public_key().key_size == 3072  # type: ignore[union-attr]
    private = combine(setup.key, _texts(setup)[::2])
    data = os.urandom(70_000)
    envelope = tmp_path / "bid.der"
    envelope.write_bytes(seal_bytes(data, [setup.key.certificate]))
    key_pem, cert_pem = tmp_path / "k.pem", tmp_path / "c.pem"
    key_pem.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    cert_pem.write_bytes(setup.key.certificate.public_bytes(serialization.Encoding.PEM))
    result = openssl_decrypt(envelope, Holder(private, setup.key.certificate, key_pem, cert_pem))
    assert (result.returncode, result.stdout) == (0, data)


def test_shares_sealed_to_member_certificates(tmp_path: Path, main: Holder, ec_holder: Holder) -> None:
    setup = create_committee("T-SEALED", 2, MEMBERS, algorithm="p256",
                             member_certificates={"alice": main.cert, "bob": ec_holder.cert})
    alice, bob, carol = setup.shares
    assert alice.share is None and bob.share is None and alice.sealed and bob.sealed
    assert carol.share is not None and carol.sealed is None
    opened = []
    for share, who in ((alice, main), (bob, ec_holder)):
        assert share.sealed is not None
        envelope = tmp_path / f"{share.member}.der"
        envelope.write_bytes(share.sealed)
        result = openssl_decrypt(envelope, who)
        assert result.returncode == 0, result.stderr
        opened.append(result.stdout.decode())
    _opens(setup.key, opened)
    _opens(setup.key, [opened[1], carol.share])
    with pytest.raises(BidprocError) as info:
        create_committee("T", 2, MEMBERS, algorithm="p256", member_certificates={"mallory": main.cert})
    assert info.value.code is Code.REQUEST_INVALID


def test_key_record_fields_and_certificate(tender: CommitteeSetup) -> None:
    """The setup object returned to the API holds shares; the key record never does (no private key)."""
    record = tender.key.to_dict()
    assert set(record) == {"tender_id", "threshold", "members", "certificate", "sealed_private_key", "identifier",
                           "share_digests"}
    der = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text"],
                         input=tender.key.certificate_der, capture_output=True, check=True).stdout.decode()
    assert "Key Agreement" in der and "T-2026-001" in der
