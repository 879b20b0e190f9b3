"""RFC 4998 evidence records: hash trees, first record per batch, renewal, and what breaks them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from bidproc.archive.evidence import record_stamper, signer_for
from bidproc.archive.package import version_prefix
from bidproc.archive.records import EvidenceRecord, hash_tree, root_of, verify_record
from bidproc.archive.renewal import complete_packages, latest_record, renew_all
from bidproc.archive.retrieve import fetch
from bidproc.archive.verify import RECORD, verify_package
from bidproc.archive.worm import open_archive
from bidproc.runtime import Runtime
from bidproc.timestamps.localca import load_or_create
from tests.archive.bids import ArchivedBid, archived_bid, local_settings


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8, 9])
def test_every_leaf_leads_to_the_root_and_nothing_else_does(count: int) -> None:
    leaves = [hashlib.sha256(os.urandom(8)).digest() for _ in range(count)]
    root, paths = hash_tree(leaves)
    for leaf, path in zip(leaves, paths, strict=True):
        assert root_of(leaf, path) == root
    stranger = hashlib.sha256(b"not archived").digest()
    assert all(root_of(stranger, path) != root for path in paths)
    if count > 2:  # a sibling hash changed anywhere in a path moves the root
        altered = [list(p) for p in paths[0]]
        altered[-1][0] = bytes(32)
        assert root_of(leaves[0], altered) != root


@pytest.fixture
def batch(tmp_path: Path) -> list[ArchivedBid]:
    rt = Runtime(local_settings(tmp_path))
    return [archived_bid(rt, reference=f"T-{n}") for n in range(3)]


def _roots(rt: Runtime) -> list[asn1_x509.Certificate]:
    pem_bytes = signer_for(rt).tsa_chain_pem
    certs = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(pem_bytes, multiple=True)]
    return [c for c in certs if c.self_signed != "no"]


def _sums(rt: Runtime, bid: ArchivedBid) -> bytes:
    with open_archive(rt.settings).open(version_prefix(bid.prefix, 1) + "SHA256SUMS") as fh:
        return fh.read()


def test_records_per_batch_verify_and_survive_renewal(batch: list[ArchivedBid], tmp_path: Path) -> None:
    rt = batch[0].rt
    archive = open_archive(rt.settings)
    stamp = record_stamper(rt)
    first = renew_all(archive, stamp, rt.clock(), timedelta(days=365))
    assert len(first.created) == 3 and not first.renewed
    assert complete_packages(archive) == sorted(first.created)
    records = {}
    for bid in batch:
        found = latest_record(archive, version_prefix(bid.prefix, 1))
        assert found is not None and found[0].endswith("/records/v1/0001.ers")
        records[bid.bid_id] = found[1]
        der = found[1]
        assert EvidenceRecord.load(der).dump(force=True) == der  # DER round trip of the hand-written ASN.1
        assert subprocess.run(["openssl", "asn1parse", "-inform", "DER"], input=der,
                              capture_output=True).returncode == 0
        check = verify_record(der, _sums(rt, bid), _roots(rt))
        assert check.ok and len(check.times) == 1, check.reason
    # One tree, one timestamp for the batch: the three records share their token.
    tokens = {EvidenceRecord.load(d)["archive_time_stamp_sequence"][0][0]["time_stamp"].dump()
              for d in records.values()}
    assert len(tokens) == 1
    # Nothing is due a year before a 10-year TSA certificate expires: a second run adds nothing.
    idle = renew_all(archive, stamp, rt.clock(), timedelta(days=365))
    assert not idle.created and not idle.renewed
    # Due when the newest timestamp's certificate expires within the window.
    renewed = renew_all(archive, stamp, rt.clock() + timedelta(days=1), timedelta(days=365 * 11))
    assert len(renewed.renewed) == 3
    for bid in batch:
        found = latest_record(archive, version_prefix(bid.prefix, 1))
        assert found is not None and found[0].endswith("/0002.ers")
        check = verify_record(found[1], _sums(rt, bid), _roots(rt))
        assert check.ok and len(check.times) == 2, check.reason
        assert check.first == verify_record(records[bid.bid_id], _sums(rt, bid), _roots(rt)).first
    pkg = tmp_path / "pkg"
    fetch(archive, batch[0].prefix, pkg)
    report = verify_package(pkg)
    assert report.ok and (pkg / RECORD).exists() and any("2 archive timestamps" in n for n in report.notes)


def test_tampering_breaks_the_record(batch: list[ArchivedBid], tmp_path: Path) -> None:
    rt = batch[0].rt
    archive = open_archive(rt.settings)
    stamp = record_stamper(rt)
    renew_all(archive, stamp, rt.clock(), timedelta(days=365))
    renew_all(archive, stamp, rt.clock(), timedelta(days=365), force=True)
    own = latest_record(archive, version_prefix(batch[0].prefix, 1))
    assert own is not None
    sums, roots = _sums(rt, batch[0]), _roots(rt)
    assert verify_record(own[1], sums, roots).ok
    # The package changed (one line of SHA256SUMS): the record no longer covers it.
    changed = sums.replace(sums[:1], b"0" if sums[:1] != b"0" else b"1", 1)
    assert "does not contain the data" in verify_record(own[1], changed, roots).reason
    # Another package's record proves this package only if its first hash list holds this package's hash
    # (its sibling in the tree: RFC 4998 reduced trees show both, and that proof is sound); otherwise not.
    leaf = hashlib.sha256(sums).digest()
    strangers = []
    for bid in batch[1:]:
        found = latest_record(archive, version_prefix(bid.prefix, 1))
        assert found is not None
        first_list = [h.native for h in EvidenceRecord.load(found[1])["archive_time_stamp_sequence"][0][0][
            "reduced_hashtree"][0]]
        assert verify_record(found[1], sums, roots).ok == (leaf in first_list)
        if leaf not in first_list:
            strangers.append(found[1])
    assert strangers  # of three leaves, at least one is not this one's sibling
    # A flipped byte in the hash tree, in the first token, in the renewal's token.
    parsed = EvidenceRecord.load(own[1])
    tree_hash = parsed["archive_time_stamp_sequence"][0][0]["reduced_hashtree"][0][0].native
    first_token = parsed["archive_time_stamp_sequence"][0][0]["time_stamp"].dump()
    second_token = parsed["archive_time_stamp_sequence"][0][1]["time_stamp"].dump()
    for piece in (tree_hash, first_token[-40:], second_token[-40:]):
        at = own[1].index(piece) + len(piece) // 2
        flipped = own[1][:at] + bytes([own[1][at] ^ 1]) + own[1][at + 1:]
        assert not verify_record(flipped, sums, roots).ok
    # Someone else's TSA: not the given roots.
    foreign = load_or_create(tmp_path / "foreign-ca", rt.clock())
    foreign_root = asn1_x509.Certificate.load(foreign.root.public_bytes(serialization.Encoding.DER))
    assert "chain" in verify_record(own[1], sums, [foreign_root]).reason
    # In a retrieved package, a record that does not match is named.
    pkg = tmp_path / "pkg"
    fetch(archive, batch[0].prefix, pkg)
    (pkg / RECORD).write_bytes(strangers[0])
    report = verify_package(pkg)
    assert [f for f, _ in report.failures] == [RECORD]
