"""RFC 4998 §5.3 hash-tree renewal: SHA-256 records re-hashed under SHA-512 keep proving their packages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem, tsp
from asn1crypto import x509 as asn1_x509

from bidproc.archive.evidence import record_stamper, signer_for
from bidproc.archive.package import version_prefix
from bidproc.archive.records import (
    ArchiveTimeStampSequence,
    EvidenceRecord,
    new_records,
    record_algorithm,
    verify_record,
)
from bidproc.archive.renewal import data_object, latest_record, renew_all
from bidproc.archive.retrieve import fetch
from bidproc.archive.verify import RECORD, verify_package
from bidproc.archive.worm import open_archive
from bidproc.errors import BidprocError, Code
from bidproc.runtime import Runtime
from bidproc.timestamps.tsa import RemoteTSA
from bidproc.timestamps.verify import verify_response
from tests.archive.bids import ArchivedBid, archived_bid, local_settings
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401  (the test PKI's TSA, over loopback)


@pytest.fixture
def pair(tmp_path: Path) -> list[ArchivedBid]:
    rt = Runtime(local_settings(tmp_path))
    return [archived_bid(rt, reference=f"T-{n}") for n in range(2)]


def _roots(rt: Runtime) -> list[asn1_x509.Certificate]:
    certs = [asn1_x509.Certificate.load(der)
             for _, _, der in pem.unarmor(signer_for(rt).tsa_chain_pem, multiple=True)]
    return [c for c in certs if c.self_signed != "no"]


def _record(rt: Runtime, bid: ArchivedBid) -> bytes:
    found = latest_record(open_archive(rt.settings), version_prefix(bid.prefix, 1))
    assert found is not None
    return found[1]


def _sums(rt: Runtime, bid: ArchivedBid) -> bytes:
    with open_archive(rt.settings).open(version_prefix(bid.prefix, 1) + "SHA256SUMS") as fh:
        return fh.read()


def _data(rt: Runtime, bid: ArchivedBid) -> Callable[[str], bytes]:
    """The data object per chain algorithm: SHA256SUMS, then every file re-hashed under SHA-512."""
    return lambda algorithm: data_object(open_archive(rt.settings), version_prefix(bid.prefix, 1), algorithm)


def test_sha512_hash_tree_renewal_verifies_and_binds_the_previous_chains(pair: list[ArchivedBid],
                                                                          tmp_path: Path) -> None:
    rt = pair[0].rt
    archive, stamp, roots = open_archive(rt.settings), record_stamper(rt), _roots(rt)
    assert len(renew_all(archive, stamp, rt.clock(), timedelta(days=365)).created) == 2
    first = {b.bid_id: _record(rt, b) for b in pair}

    rehashed = renew_all(archive, stamp, rt.clock(), timedelta(days=365), algorithm="sha512")
    assert len(rehashed.rehashed) == 2 and not rehashed.renewed and not rehashed.created
    for bid in pair:
        der = _record(rt, bid)
        record = EvidenceRecord.load(der)
        chains = record["archive_time_stamp_sequence"]
        assert len(chains) == 2 and record_algorithm(der) == "sha512"
        assert [a["algorithm"].native for a in record["digest_algorithms"]] == ["sha256", "sha512"]
        token = chains[1][0]["time_stamp"]["content"]["encap_content_info"]["content"].parsed
        assert token["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha512"
        assert len(token["message_imprint"]["hashed_message"].native) == 64
        check = verify_record(der, _data(rt, bid), roots)
        assert check.ok, check.reason
        assert len(check.times) == 2 and check.first == verify_record(first[bid.bid_id], _sums(rt, bid), roots).first
        # The SHA-512 chain covers each file's SHA-512, not SHA256SUMS (which binds them by SHA-256 only).
        assert not verify_record(der, _sums(rt, bid), roots).ok

    # Afterwards: timestamp renewals continue the SHA-512 chain; asking for SHA-256 downgrades nothing.
    renewed = renew_all(archive, stamp, rt.clock(), timedelta(days=365), force=True, algorithm="sha512")
    assert len(renewed.renewed) == 2 and not renewed.rehashed
    idle = renew_all(archive, stamp, rt.clock(), timedelta(days=365), algorithm="sha256")
    assert not idle.rehashed and not idle.renewed
    der = _record(rt, pair[0])
    assert len(EvidenceRecord.load(der)["archive_time_stamp_sequence"][1]) == 2
    assert verify_record(der, _data(rt, pair[0]), roots).ok
    pkg = tmp_path / "pkg"
    fetch(archive, pair[0].prefix, pkg)
    report = verify_package(pkg)
    assert report.ok and any("3 archive timestamps" in n for n in report.notes), report.notes

    # The data changed: caught by the SHA-256 chain and by the SHA-512 one alike.
    sums = _sums(rt, pair[0])
    changed = sums.replace(sums[:1], b"0" if sums[:1] != b"0" else b"1", 1)
    assert "does not contain the data" in verify_record(der, changed, roots).reason
    listing = _data(rt, pair[0])("sha512")
    # Every file of the package is in it: all that `evidence get` writes but the record and this list.
    assert listing.count(b"\n") == len(fetch(archive, pair[0].prefix, tmp_path / "again")) - 2
    # The SHA-512 chain covers the chains before it: put after another first chain that proves this very
    # package too (a fresh SHA-256 record of it, under a timestamp of its own), it no longer verifies.
    fresh = EvidenceRecord.load(new_records([sums], stamp)[0])
    assert verify_record(fresh.dump(), sums, roots).ok
    original = EvidenceRecord.load(der)
    chains = [list(c) for c in original["archive_time_stamp_sequence"]]
    chains[0] = list(fresh["archive_time_stamp_sequence"][0])
    forged = EvidenceRecord({"version": 1, "digest_algorithms": original["digest_algorithms"],
                             "archive_time_stamp_sequence": ArchiveTimeStampSequence(chains)}).dump()
    assert "archive timestamp 2's hash tree does not contain the data" in verify_record(
        forged, _data(rt, pair[0]), roots).reason
    (pkg / RECORD).write_bytes(forged)
    assert [f for f, _ in verify_package(pkg).failures] == [RECORD]


def test_a_file_altered_after_a_sha512_renewal_breaks_the_sha512_chain_which_names_it(
        pair: list[ArchivedBid], tmp_path: Path) -> None:
    rt = pair[0].rt
    archive, stamp, roots = open_archive(rt.settings), record_stamper(rt), _roots(rt)
    renew_all(archive, stamp, rt.clock(), timedelta(days=365))
    assert renew_all(archive, stamp, rt.clock(), timedelta(days=365), algorithm="sha512").rehashed
    pkg = tmp_path / "pkg"
    names = fetch(archive, pair[0].prefix, pkg)
    assert "evidence-record.SHA512SUMS" in names and verify_package(pkg).ok
    target = next(n for n in names if n.startswith("objects/"))
    (pkg / target).chmod(0o644)
    body = bytearray((pkg / target).read_bytes())
    body[len(body) // 2] ^= 1
    (pkg / target).write_bytes(bytes(body))
    failures = dict(verify_package(pkg).failures)
    assert "evidence-record.SHA512SUMS, which the record's SHA512 chain covers" in failures[target]
    assert "archive timestamp 2's hash tree does not contain the data" in failures[RECORD]
    # Should SHA-256 fall (a forged file with the same SHA-256, so SHA256SUMS still holds), the SHA-512
    # chain alone catches it: the SHA-256 chain is given the untouched SHA256SUMS, the SHA-512 chain
    # the files as they are now.
    sums, der = (pkg / "SHA256SUMS").read_bytes(), (pkg / RECORD).read_bytes()
    body_digests = {p.relative_to(pkg).as_posix(): hashlib.sha512(p.read_bytes()).hexdigest()
                    for p in pkg.rglob("*") if p.is_file() and not p.name.startswith("evidence-record.")}
    from bidproc.archive.package import sums_text

    def now_data(algorithm: str) -> bytes:
        return sums if algorithm == "sha256" else sums_text(sorted(body_digests.items()))

    assert verify_record(der, sums, roots).reason.startswith("archive timestamp 2")
    check = verify_record(der, now_data, roots)
    assert not check.ok and "archive timestamp 2's hash tree does not contain the data" in check.reason
    body[len(body) // 2] ^= 1  # restored: all hold again
    body_digests[target] = hashlib.sha512(bytes(body)).hexdigest()
    assert verify_record(der, now_data, roots).ok


def test_a_remote_tsa_stamps_and_checks_sha512_imprints(pki: TestPKI) -> None:  # noqa: F811
    """Records renewed to SHA-512 with a configured TSA: the imprint and its check follow the algorithm."""
    digest = hashlib.sha512(b"root of a SHA-512 hash tree").digest()
    tsa = RemoteTSA(pki.tsa_url, 10, roots=(pki.root_der,))
    stamp = tsa.timestamp(digest, datetime.now(UTC), "sha512")
    info = tsp.TimeStampResp.load(stamp.response_der)["time_stamp_token"]["content"]["encap_content_info"][
        "content"].parsed["message_imprint"]
    assert (info["hash_algorithm"]["algorithm"].native, info["hashed_message"].native) == ("sha512", digest)
    with pytest.raises(BidprocError) as wrong:  # a SHA-512 token is not what a SHA-256 check accepts
        verify_response(stamp.response_der, digest, (pki.root_der,))
    assert wrong.value.code is Code.TIMESTAMP_INVALID
