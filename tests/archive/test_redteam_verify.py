"""Red team: `bidproc evidence verify` against packages tampered with in ways the other tests do not try.

Every check runs on a real package (local archive, the runtime's PKI and TSA) that a forger then edits
without the seal key: what verify must answer is a named failure, never OK, never a traceback.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from bidproc.archive.evidence import record_stamper
from bidproc.archive.records import verify_record
from bidproc.archive.renewal import renew_all
from bidproc.archive.retrieve import fetch, zip_directory
from bidproc.archive.verify import RECORD, Report, verify_package
from bidproc.archive.worm import open_archive
from bidproc.runtime import Runtime
from tests.archive.bids import ArchivedBid, archived_bid, local_settings
from tests.services import ROOT


@pytest.fixture
def bid(tmp_path: Path) -> ArchivedBid:
    return archived_bid(Runtime(local_settings(tmp_path)))


def _package(bid: ArchivedBid, out: Path, *, record: bool = False) -> Path:
    if record:
        rt = bid.rt
        renew_all(open_archive(rt.settings), record_stamper(rt), rt.clock(), timedelta(days=365))
    fetch(open_archive(bid.rt.settings), bid.prefix, out)
    assert verify_package(out).ok
    assert (out / RECORD).exists() == record
    return out


def _write(path: Path, data: bytes) -> None:
    if path.exists():
        path.chmod(0o644)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _both_forms(pkg: Path, tmp: Path) -> list[Report]:
    zipped = tmp / f"{pkg.name}.zip"
    zip_directory(pkg, zipped)
    return [verify_package(pkg), verify_package(zipped)]


# Files a forger adds next to the proofs: named like the record's companions, or like a real object
# with a name that only differs in Unicode (NFD, zero-width, fullwidth) from one that is listed.
ADDED = [
    "evidence-record.txt",
    "evidence-record.pdf",
    "evidence-record.SHA512SUMS",  # a hash list no record covers
    "evidence-record.SHA384SUMS",
    "evidence-record.ers.bak",
    "evidence-record.",
    "objects/receipt.json\u200b",
    "objects/r\u00e9ceipt.json",
    "objects/re\u0301ceipt.json",
    "objects/\uff52eceipt.json",
]


@pytest.mark.parametrize("name", ADDED)
def test_a_file_added_beside_the_proofs_is_named(bid: ArchivedBid, tmp_path: Path, name: str) -> None:
    pkg = _package(bid, tmp_path / "pkg")
    _write(pkg / name, b"withdrawn: the bidder asked to cancel this offer\n")
    for report in _both_forms(pkg, tmp_path):
        assert not report.ok, (name, report.notes)
        assert any(f == name for f, _ in report.failures), report.failures


@pytest.mark.parametrize("name", ["evidence-record.txt", "evidence-record.SHA384SUMS", "evidence-record.ers2"])
def test_a_file_added_beside_a_genuine_record_is_named(bid: ArchivedBid, tmp_path: Path, name: str) -> None:
    pkg = _package(bid, tmp_path / "pkg", record=True)
    _write(pkg / name, b"0" * 128 + b"  objects/receipt.json\n")
    for report in _both_forms(pkg, tmp_path):
        assert not report.ok
        assert any(f == name for f, _ in report.failures), report.failures


def _deep_json(_: bytes) -> bytes:
    return b"[" * 200_000 + b"]" * 200_000


def _deep_object(_: bytes) -> bytes:
    return b'{"objects":' * 100_000 + b"[]" + b"}" * 100_000


def _unterminated_pem(_: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\nnot base64 at all !\n"


def _garbage_der_pem(_: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\nAAAAAA==\n-----END CERTIFICATE-----\n"


def _not_der_cert(data: bytes) -> bytes:
    return data.replace(b"MII", b"MIJ", 1)


def _deep_der(_: bytes) -> bytes:
    return b"\x30\x80" * 200_000


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# (file, how it is rewritten): each must give a failure naming a file, never an exception.
HOSTILE = {
    "manifest nested 200000 deep": ("manifest.json", _deep_json),
    "manifest objects nested": ("manifest.json", _deep_object),
    "seal chain unterminated PEM": ("certs/seal-chain.pem", _unterminated_pem),
    "tsa chain unterminated PEM": ("certs/tsa-chain.pem", _unterminated_pem),
    "seal chain PEM of garbage DER": ("certs/seal-chain.pem", _garbage_der_pem),
    "tsa chain PEM of garbage DER": ("certs/tsa-chain.pem", _garbage_der_pem),
    "tsa chain certificate mangled": ("certs/tsa-chain.pem", _not_der_cert),
    "timestamp deeply nested DER": ("SHA256SUMS.tsr", _deep_der),
    "manifest seal deeply nested DER": ("manifest.json.p7s", _deep_der),
    "record deeply nested DER": (RECORD, _deep_der),
    "record truncated": (RECORD, _truncated),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_fails_cleanly(bid: ArchivedBid, tmp_path: Path, case: str) -> None:
    name, change = HOSTILE[case]
    pkg = _package(bid, tmp_path / "pkg", record=name == RECORD)
    _write(pkg / name, change((pkg / name).read_bytes()))
    for report in _both_forms(pkg, tmp_path):  # returns, does not raise
        assert not report.ok
        assert any(f == name for f, _ in report.failures), report.failures


def test_the_cli_exits_1_not_with_a_traceback_on_a_hostile_manifest(bid: ArchivedBid, tmp_path: Path) -> None:
    pkg = _package(bid, tmp_path / "pkg")
    _write(pkg / "manifest.json", _deep_json(b""))
    cli = subprocess.run(
        [sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(pkg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr[-2000:]
    assert "FAILED manifest.json" in cli.stdout


def test_an_unreadable_zip_entry_is_named(bid: ArchivedBid, tmp_path: Path) -> None:
    """A stored entry whose bytes no longer match its CRC (zipfile raises on reading it)."""
    pkg = _package(bid, tmp_path / "pkg")
    zipped = tmp_path / "pkg.zip"
    zip_directory(pkg, zipped)
    info = zipfile.ZipFile(zipped).getinfo("objects/receipt.json")
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 10
    data = bytearray(zipped.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + 5] ^= 0x01
    zipped.write_bytes(bytes(data))
    report = verify_package(zipped)
    assert not report.ok and any(f == "objects/receipt.json" for f, _ in report.failures), report.failures


def test_mutated_records_never_crash_the_check(bid: ArchivedBid, tmp_path: Path) -> None:
    """Single-byte changes all over a genuine record: a reason each time, never an exception."""
    pkg = _package(bid, tmp_path / "pkg", record=True)
    record, sums = (pkg / RECORD).read_bytes(), (pkg / "SHA256SUMS").read_bytes()
    from bidproc.archive.verify import _certs, _roots

    roots = _roots(_certs((pkg / "certs/tsa-chain.pem").read_bytes()))
    rng = random.Random(4998)
    for at in sorted(rng.sample(range(len(record)), min(150, len(record)))):
        mutated = record[:at] + bytes([record[at] ^ rng.choice([0x01, 0x80, 0xFF])]) + record[at + 1 :]
        check = verify_record(mutated, sums, roots)  # must return
        assert check.ok or check.reason, at


def _manifest_with(pkg: Path, edit: str) -> bytes:
    """manifest.json re-serialised by hand with a key or an object entry twice (the later one true)."""
    manifest = json.loads((pkg / "manifest.json").read_bytes())
    first = manifest["objects"][0]
    body = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False)
    if edit == "sha256 twice":
        true = f'"sha256": "{first["sha256"]}"'
        return body.replace(true, f'"sha256": "{"0" * 64}",\n {true}', 1).encode()
    if edit == "objects twice":  # an earlier "objects" with other hashes; the later one is the real list
        forged = [{**o, "sha256": "0" * 64} for o in manifest["objects"]]
        return body.replace("{\n", '{\n "objects": ' + json.dumps(forged) + ",\n", 1).encode()
    entry = {**first, "sha256": "0" * 64, "sha512": "0" * 128}  # the same path listed twice
    manifest["objects"] = [entry, *manifest["objects"]]
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


@pytest.mark.parametrize("edit", ["sha256 twice", "objects twice", "path twice"])
def test_an_ambiguous_manifest_is_refused(bid: ArchivedBid, tmp_path: Path, edit: str) -> None:
    """JSON parsers disagree on duplicate keys (Python keeps the last, others the first): a manifest
    that says two things is not one bidproc wrote, whichever way a reader takes it."""
    pkg = _package(bid, tmp_path / "pkg")
    _write(pkg / "manifest.json", _manifest_with(pkg, edit))
    report = verify_package(pkg)
    assert not report.ok
    reasons = [why for f, why in report.failures if f == "manifest.json"]
    assert any("twice" in why for why in reasons), report.failures
