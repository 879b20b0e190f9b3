"""Evidence package: layout, the README's openssl-only check, `bidproc evidence verify`, tampering."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import pem
from cryptography.hazmat.primitives import serialization

from bidproc.archive.evidence import archive_bid
from bidproc.archive.package import sums_text
from bidproc.archive.retrieve import fetch, zip_directory
from bidproc.archive.seal import Sealer
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import LocalArchive, open_archive
from bidproc.journal.chain import append
from bidproc.runtime import Runtime
from bidproc.timestamps.localca import load_or_create
from bidproc.timestamps.tsa import LocalTSA
from tests.archive.bids import ArchivedBid, archived_bid, local_settings, now
from tests.services import ROOT

# The README's offline check, word for word (run in the package directory).
README_COMMANDS = (
    "openssl cms -verify -binary -inform DER -in SHA256SUMS.p7s -content SHA256SUMS "
    "-CAfile certs/seal-chain.pem -no-CApath -no-CAstore -purpose any -out /dev/null",
    "openssl ts -verify -data SHA256SUMS -in SHA256SUMS.tsr -CAfile certs/tsa-chain.pem",
    "sha256sum -c SHA256SUMS",
)


@pytest.fixture
def bid(tmp_path: Path) -> ArchivedBid:
    rt = Runtime(local_settings(tmp_path))
    return archived_bid(rt)


def package_dir(bid: ArchivedBid, out: Path) -> Path:
    fetch(open_archive(bid.rt.settings), bid.prefix, out)
    return out


def run_readme(directory: Path) -> list[int]:
    return [subprocess.run(cmd.split(), cwd=directory, capture_output=True).returncode for cmd in README_COMMANDS]


def test_readme_documents_the_commands_verbatim() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    for cmd in README_COMMANDS:
        assert cmd in readme


def test_layout_manifest_and_standard_tools(bid: ArchivedBid, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    pkg = package_dir(bid, tmp_path / "pkg")
    names = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
    assert {"manifest.json", "manifest.json.p7s", "SHA256SUMS", "SHA256SUMS.p7s", "SHA256SUMS.tsr",
            "certs/seal-chain.pem", "certs/tsa-chain.pem", "objects/receipt.json", "objects/receipt.tsr",
            "objects/receipt.p7s", "objects/manifest.json", "objects/journal.json"} <= names
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["bid"] == bid.bid_id and manifest["tender"]["id"] == bid.tender_id
    assert manifest["bidder"] == "ACME" and manifest["version"] == 1 and manifest["retention"]["until"]
    roles = {o["path"].split("/")[1]: o["role"] for o in manifest["objects"]}
    assert roles["files"] == "original" and roles["renditions"] == "rendition"
    assert roles["reports"] == "validation-report" and roles["receipt.tsr"] == "deposit-receipt-timestamp"
    for entry in manifest["objects"]:  # every object, with both digests of the bytes in the package
        data = (pkg / entry["path"]).read_bytes()
        assert (entry["size"], entry["sha256"], entry["sha512"]) == (
            len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest())
    assert {o["path"] for o in manifest["objects"]} == {n for n in names if n.startswith("objects/")}
    assert len([n for n in names if n.startswith("objects/files/")]) == len(bid.files)
    # The stored objects are the pipeline's bytes, byte for byte.
    assert (pkg / "objects/receipt.json").read_bytes() == bid.rt.store.get_bytes(bid.prefix + "/receipt.json")
    listed = {line.split("  ", 1)[1] for line in (pkg / "SHA256SUMS").read_text().splitlines()}
    assert listed == names - {"SHA256SUMS", "SHA256SUMS.p7s", "SHA256SUMS.tsr"}
    assert run_readme(pkg) == [0, 0, 0]
    report = verify_package(pkg)
    assert report.ok, report.failures
    # The README's fingerprint loop prints every certificate of both chain files, the root included.
    root = hashlib.sha256(bid.rt.local_pki.root.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert report.roots == {"certs/seal-chain.pem": [root], "certs/tsa-chain.pem": [root]}
    shown = _fingerprints(readme, pkg)
    for chain in report.roots:
        in_file = [hashlib.sha256(der).hexdigest() for _, _, der in pem.unarmor((pkg / chain).read_bytes(),
                                                                                multiple=True)]
        assert shown[chain] == in_file and root in in_file
    zipped = tmp_path / "pkg.zip"
    zip_directory(pkg, zipped)
    assert verify_package(zipped).ok


def _fingerprints(readme: str, directory: Path) -> dict[str, list[str]]:
    """Run the README's fingerprint loop; the fingerprints it prints, per chain file."""
    loop = next(line for line in readme.splitlines() if line.startswith("for f in certs/seal-chain.pem"))
    out = subprocess.run(["sh", "-c", loop], cwd=directory, capture_output=True, text=True, check=True).stdout
    shown: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.endswith(".pem:"):
            current = line[:-1]
            shown[current] = []
        elif "Fingerprint=" in line:
            shown[current].append(line.split("=", 1)[1].replace(":", "").lower())
    return shown


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _first(pkg: Path, under: str) -> Path:
    return sorted((pkg / under).rglob("*.enc") if under != "objects" else (pkg / under).glob("receipt.*"))[0]


def _replace_manifest(pkg: Path) -> None:
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest["bidder"] = "EVIL CORP"
    (pkg / "manifest.json").chmod(0o644)
    (pkg / "manifest.json").write_text(json.dumps(manifest))


def _resum(pkg: Path) -> None:
    """Tamper with an object, then rewrite SHA256SUMS to match (the seal and timestamp no longer do)."""
    _flip(_first(pkg, "objects/files"))
    entries = [(p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
               for p in pkg.rglob("*") if p.is_file() and p.name not in {"SHA256SUMS", "SHA256SUMS.p7s",
                                                                            "SHA256SUMS.tsr"}]
    (pkg / "SHA256SUMS").chmod(0o644)
    (pkg / "SHA256SUMS").write_bytes(sums_text(entries))


TAMPERING: dict[str, tuple[Callable[[Path], None], list[bool], str, str]] = {
    # name: (change, which README commands must fail, file verify must name, words in the reason)
    "flip a byte of an original": (lambda p: _flip(_first(p, "objects/files")), [False, False, True],
                                   "objects/files/", "SHA-256 differs"),
    "flip a byte of a report": (lambda p: _flip(_first(p, "objects/reports")), [False, False, True],
                                "objects/reports/", "SHA-256 differs"),
    "flip a byte of the receipt": (lambda p: _flip(p / "objects/receipt.json"), [False, False, True],
                                   "objects/receipt.json", "SHA-256 differs"),
    "delete an object": (lambda p: _first(p, "objects/renditions").unlink(), [False, False, True],
                         "objects/renditions/", "missing"),
    "replace the manifest": (_replace_manifest, [False, False, True], "manifest.json", "SHA-256 differs"),
    "rewrite SHA256SUMS after tampering": (_resum, [True, True, False], "SHA256SUMS.p7s", "altered"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_tampering_is_caught_and_named(bid: ArchivedBid, tmp_path: Path, name: str) -> None:
    change, must_fail, culprit, reason = TAMPERING[name]
    pkg = package_dir(bid, tmp_path / "pkg")
    change(pkg)
    codes = run_readme(pkg)
    for code, fails in zip(codes, must_fail, strict=True):
        if fails:
            assert code != 0, (name, codes)
    assert any(c != 0 for c in codes)
    for form in (pkg, tmp_path / "pkg.zip"):
        if form.suffix == ".zip":
            zip_directory(pkg, form)
        report = verify_package(form)
        assert not report.ok
        assert any(f.startswith(culprit) and reason in why for f, why in report.failures), report.failures
    cli = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(pkg)],
                         capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 1 and f"FAILED {culprit}" in cli.stdout, cli.stdout


def test_a_zip_with_a_name_twice_is_refused(bid: ArchivedBid, tmp_path: Path) -> None:
    pkg = package_dir(bid, tmp_path / "pkg")
    zipped = tmp_path / "pkg.zip"
    zip_directory(pkg, zipped)
    with zipfile.ZipFile(zipped, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("objects/receipt.json", b"{}")
    report = verify_package(zipped)
    assert ("objects/receipt.json", "appears more than once in the ZIP") in report.failures


def test_an_oversized_proof_is_refused_before_reading_it_whole(bid: ArchivedBid, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from bidproc.archive import verify

    pkg = package_dir(bid, tmp_path / "pkg")
    monkeypatch.setattr(verify, "MAX_READ_WHOLE", 100)
    report = verify_package(pkg)
    assert not report.ok and ("manifest.json", "larger than 100 bytes: not a file bidproc writes") in report.failures


def test_the_manifest_seal_carries_a_valid_signature_timestamp(bid: ArchivedBid, tmp_path: Path) -> None:
    from asn1crypto import cms

    from bidproc.archive.verify import _certs, _check_seal, _roots

    pkg = package_dir(bid, tmp_path / "pkg")
    manifest, p7s = (pkg / "manifest.json").read_bytes(), (pkg / "manifest.json.p7s").read_bytes()
    seal_chain, tsa_chain = (_certs((pkg / f"certs/{n}-chain.pem").read_bytes()) for n in ("seal", "tsa"))
    info = cms.ContentInfo.load(p7s)
    unsigned = info["content"]["signer_infos"][0]["unsigned_attrs"]
    assert [a["type"].native for a in unsigned] == ["signature_time_stamp_token"]
    assert _check_seal(manifest, p7s, _roots(seal_chain), seal_chain, None, _roots(tsa_chain)) == ""
    # The token's signature flipped; the token removed; the token checked against someone else's TSA root.
    token = unsigned[0]["values"][0].dump()
    at = p7s.index(token) + len(token) - 20
    flipped = p7s[:at] + bytes([p7s[at] ^ 1]) + p7s[at + 1:]
    assert "timestamp" in _check_seal(manifest, flipped, _roots(seal_chain), seal_chain, None, _roots(tsa_chain))
    bare = cms.ContentInfo.load(p7s)
    del bare["content"]["signer_infos"][0]["unsigned_attrs"]
    assert "no signature timestamp" in _check_seal(manifest, bare.dump(force=True), _roots(seal_chain), seal_chain,
                                                   None, _roots(tsa_chain))
    other = load_or_create(tmp_path / "other-ca", now())
    other_root = _certs(other.root.public_bytes(serialization.Encoding.PEM))
    assert "timestamp" in _check_seal(manifest, p7s, _roots(seal_chain), seal_chain, None, other_root)


def test_an_added_file_is_named(bid: ArchivedBid, tmp_path: Path) -> None:
    pkg = package_dir(bid, tmp_path / "pkg")
    (pkg / "objects" / "files" / "extra.enc").write_bytes(b"slipped in")
    report = verify_package(pkg)
    assert ("objects/files/extra.enc", "not listed in SHA256SUMS (added after sealing)") in report.failures
    assert ("objects/files/extra.enc", "object not listed in manifest.json") in report.failures


def test_a_package_resealed_by_someone_else_fails_the_root_check(bid: ArchivedBid, tmp_path: Path) -> None:
    """A forger who re-seals and re-stamps with a PKI of their own passes openssl with their own chains:
    only the root fingerprints tell. `--root-sha256` (the published roots) catches it."""
    pkg = package_dir(bid, tmp_path / "pkg")
    _replace_manifest(pkg)
    forged = load_or_create(tmp_path / "forger-ca", now())
    entries = [(p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
               for p in pkg.rglob("*") if p.is_file() and not p.name.startswith("SHA256SUMS")
               and p.name != "manifest.json.p7s"]
    sealer = Sealer.from_local_pki(forged)
    forged_stamp = LocalTSA(forged)
    manifest_seal = sealer.seal((pkg / "manifest.json").read_bytes(),
                                timestamp=lambda d: forged_stamp.timestamp(d, now()).response_der)
    for path, data in (("manifest.json.p7s", manifest_seal),
                       ("certs/seal-chain.pem", forged.chain_pem(forged.seal)),
                       ("certs/tsa-chain.pem", forged.chain_pem(forged.tsa))):
        (pkg / path).chmod(0o644)
        (pkg / path).write_bytes(data)
    entries = [(p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
               for p in pkg.rglob("*") if p.is_file() and not p.name.startswith("SHA256SUMS")]
    sums = sums_text(entries)
    for path, data in (("SHA256SUMS", sums), ("SHA256SUMS.p7s", sealer.seal(sums)),
                       ("SHA256SUMS.tsr", LocalTSA(forged).timestamp(hashlib.sha256(sums).digest(), now())
                        .response_der)):
        (pkg / path).chmod(0o644)
        (pkg / path).write_bytes(data)
    assert run_readme(pkg) == [0, 0, 0]  # the standard tools alone cannot tell
    assert verify_package(pkg).ok
    real_root = hashlib.sha256(bid.rt.local_pki.root.public_bytes(serialization.Encoding.DER)).hexdigest()
    report = verify_package(pkg, frozenset({real_root}))
    assert {f for f, _ in report.failures} == {"certs/seal-chain.pem", "certs/tsa-chain.pem", "SHA256SUMS.tsr",
                                               "SHA256SUMS.p7s", "manifest.json.p7s"}
    genuine = package_dir(bid, tmp_path / "genuine")
    assert verify_package(genuine, frozenset({real_root})).ok
    # The forger appends a copy of the genuine root to each chain: the standard tools still pass (and
    # the last certificate of each file is the genuine root), but the README's loop shows the forged
    # root, and pinned verification trusts only the genuine one.
    genuine_root_pem = bid.rt.local_pki.root.public_bytes(serialization.Encoding.PEM)
    for chain in ("certs/seal-chain.pem", "certs/tsa-chain.pem"):
        (pkg / chain).write_bytes((pkg / chain).read_bytes() + genuine_root_pem)
    entries = [(p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
               for p in pkg.rglob("*") if p.is_file() and not p.name.startswith("SHA256SUMS")]
    sums = sums_text(entries)
    for path, data in (("SHA256SUMS", sums), ("SHA256SUMS.p7s", sealer.seal(sums)),
                       ("SHA256SUMS.tsr", LocalTSA(forged).timestamp(hashlib.sha256(sums).digest(), now())
                        .response_der)):
        (pkg / path).write_bytes(data)
    assert run_readme(pkg) == [0, 0, 0]
    forged_root = hashlib.sha256(forged.root.public_bytes(serialization.Encoding.DER)).hexdigest()
    readme = (ROOT / "README.md").read_text()
    assert all(forged_root in fps for fps in _fingerprints(readme, pkg).values())
    pinned = verify_package(pkg, frozenset({real_root}))
    assert {"certs/seal-chain.pem", "certs/tsa-chain.pem", "SHA256SUMS.tsr", "SHA256SUMS.p7s",
            "manifest.json.p7s"} <= {f for f, _ in pinned.failures}, pinned.failures


def test_archiving_twice_is_idempotent_and_versions_never_overwrite(bid: ArchivedBid, tmp_path: Path) -> None:
    rt = bid.rt
    receipt = rt.store.get_bytes(bid.prefix + "/receipt.json")
    archive = open_archive(rt.settings)
    before = {k: archive.sha256(k) for k in archive.keys(bid.prefix + "/")}
    again = archive_bid(rt, bid.tender_id, bid.bid_id, receipt)
    assert again.version == 1 and {k: archive.sha256(k) for k in archive.keys(bid.prefix + "/")} == before
    # After the opening: a second version, the first untouched, the second pointing at it.
    rt.store.put_bytes(bid.prefix + "/opening/record.json", b'{"opened": true}')
    v2 = archive_bid(rt, bid.tender_id, bid.bid_id, receipt, new_version=True)
    assert v2.version == 2 and v2.manifest["previous"]["version"] == 1
    assert {k: archive.sha256(k) for k in archive.keys(bid.prefix + "/evidence/v1/")} == before
    pkg = tmp_path / "v2"
    fetch(archive, bid.prefix, pkg)
    assert (pkg / "objects/opening/record.json").exists() and verify_package(pkg).ok
    assert run_readme(pkg) == [0, 0, 0]


def test_a_crash_midway_is_finished_not_duplicated(tmp_path: Path) -> None:
    rt = Runtime(local_settings(tmp_path))
    bid = archived_bid(rt)
    archive = open_archive(rt.settings)
    assert isinstance(archive, LocalArchive)
    v1 = archive.root / bid.prefix / "evidence" / "v1"
    for name in ("SHA256SUMS.tsr", "SHA256SUMS.p7s"):  # as if the process died before these
        (v1 / name).unlink()
    with rt.db.session() as s:  # the journal moved on meanwhile (e.g. a status read)
        append(s, actor="platform-a", action="bid.read", subject=bid.bid_id, now=now())
    receipt = rt.store.get_bytes(bid.prefix + "/receipt.json")
    again = archive_bid(rt, bid.tender_id, bid.bid_id, receipt)
    assert again.version == 1 and again.resumed
    assert sorted(p.name for p in (archive.root / bid.prefix / "evidence").iterdir()) == ["v1"]
    pkg = tmp_path / "pkg"
    fetch(archive, bid.prefix, pkg)
    assert verify_package(pkg).ok and run_readme(pkg) == [0, 0, 0]


def test_evidence_get_cli_directory_and_zip(tmp_path: Path) -> None:
    settings_env = {"BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "data")}
    import os

    env = {**os.environ, **settings_env}
    rt = Runtime(local_settings(tmp_path))
    key = rt.settings.service.service_key
    env["BIDPROC_SERVICE_SERVICE_KEY"] = key
    bid = archived_bid(rt)
    for out in (tmp_path / "out-dir", tmp_path / "out.zip"):
        got = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "get", bid.bid_id, "-o", str(out)],
                             env=env, cwd=tmp_path, capture_output=True, text=True)
        assert got.returncode == 0, got.stderr
        check = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(out)],
                               env=env, cwd=ROOT, capture_output=True, text=True)
        assert check.returncode == 0 and "Verification: OK" in check.stdout, check.stdout
        # Unpinned, a package forged whole with its own roots would be just as consistent: the verdict says
        # so. Pinned to the published root, the plain OK.
        assert "integrity only: no root was pinned" in check.stdout, check.stdout
        root = hashlib.sha256(rt.local_pki.root.public_bytes(serialization.Encoding.DER)).hexdigest()
        pinned = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(out),
                                 "--root-sha256", root], env=env, cwd=ROOT, capture_output=True, text=True)
        assert pinned.returncode == 0 and "Verification: OK\n" in pinned.stdout, pinned.stdout
        assert "integrity only" not in pinned.stdout
    assert zipfile.ZipFile(tmp_path / "out.zip").getinfo("SHA256SUMS").file_size > 0
    missing = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "get", "no-such-bid", "-o",
                              str(tmp_path / "x")], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2
    shutil.rmtree(tmp_path / "out-dir")
