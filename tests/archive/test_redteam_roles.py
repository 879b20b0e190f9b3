"""Red team: pinned roots without a role, when the TSA is a public trust service (production's case).

A qualified TSA's CA commonly issues signing certificates to anyone who pays (here the test PKI: one
root above its TSA and, through its issuing CA, Alice Martin's signing certificate). An archivist pins
the service's seal root and that TSA root; if a pin counts for either role, Alice can re-seal a package
with her own certificate and ship its chain as `certs/seal-chain.pem`: every root in the package is
a pinned one. Pins must say which role they trust.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bidproc.archive.package import sums_text
from bidproc.archive.retrieve import fetch
from bidproc.archive.seal import Sealer
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.runtime import Runtime
from bidproc.timestamps.localca import Credential
from bidproc.timestamps.tsa import LocalTSA
from tests.archive.bids import archived_bid, local_settings
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401  (the test PKI's TSA, over loopback)
from tests.services import ROOT


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _fp(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _forge(pkg: Path, rt: Runtime, pki: TestPKI) -> None:  # noqa: F811
    """Alice's forgery: another bidder name, sealed with her own certificate, stamped by the public TSA."""
    key = serialization.load_der_private_key(pki.key("signer").dump(), None)
    alice = Sealer(
        Credential(x509.load_der_x509_certificate(pki.der("signer")), key),  # type: ignore[arg-type]
        (pki.der("interm"), pki.root_der),
    )

    def stamp(digest: bytes) -> bytes:
        return rt.tsa.timestamp(digest, rt.clock()).response_der

    manifest = json.loads((pkg / "manifest.json").read_bytes())
    manifest["bidder"] = "ALICE MARTIN SARL"
    files = {
        "manifest.json": json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n",
        "certs/seal-chain.pem": b"".join(_pem(pki.der(c)) for c in ("signer", "interm", "root")),
    }
    files["manifest.json.p7s"] = alice.seal(files["manifest.json"], timestamp=stamp)
    for name, data in files.items():
        (pkg / name).chmod(0o644)
        (pkg / name).write_bytes(data)
    entries = [
        (p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in pkg.rglob("*")
        if p.is_file() and not p.name.startswith("SHA256SUMS")
    ]
    sums = sums_text(entries)
    for name, data in (
        ("SHA256SUMS", sums),
        ("SHA256SUMS.p7s", alice.seal(sums)),
        ("SHA256SUMS.tsr", stamp(hashlib.sha256(sums).digest())),
    ):
        (pkg / name).chmod(0o644)
        (pkg / name).write_bytes(data)


@pytest.fixture
def setup(tmp_path: Path, pki: TestPKI) -> tuple[Path, Path, str, str]:  # noqa: F811
    tsa_root = tmp_path / "tsa-root.pem"
    tsa_root.write_bytes(_pem(pki.root_der))
    rt = Runtime(
        local_settings(tmp_path, BIDPROC_TIMESTAMPING_TSA_URL=pki.tsa_url, BIDPROC_TIMESTAMPING_TSA_ROOTS=str(tsa_root))
    )
    assert not isinstance(rt.tsa, LocalTSA)
    bid = archived_bid(rt)
    genuine, forged = tmp_path / "genuine", tmp_path / "forged"
    for out in (genuine, forged):
        fetch(open_archive(rt.settings), bid.prefix, out)
    _forge(forged, rt, pki)
    seal_root = _fp(rt.local_pki.root.public_bytes(serialization.Encoding.DER))
    return genuine, forged, seal_root, _fp(pki.root_der)


def test_a_seal_by_a_certificate_of_the_tsa_s_ca_fails_role_pinned_verification(
    setup: tuple[Path, Path, str, str],
) -> None:
    genuine, forged, seal_root, tsa_root = setup
    assert verify_package(genuine, seal_roots=frozenset({seal_root}), tsa_roots=frozenset({tsa_root})).ok
    report = verify_package(forged, seal_roots=frozenset({seal_root}), tsa_roots=frozenset({tsa_root}))
    assert not report.ok
    named = {f for f, _ in report.failures}
    assert {"certs/seal-chain.pem", "SHA256SUMS.p7s", "manifest.json.p7s"} <= named, report.failures


def test_roots_pinned_without_a_role_are_not_a_pass_for_the_forgery(setup: tuple[Path, Path, str, str]) -> None:
    """The forgery only uses pinned roots: pins without roles cannot tell, so they must not say OK."""
    genuine, forged, seal_root, tsa_root = setup
    assert not verify_package(forged, frozenset({seal_root, tsa_root})).ok
    one_pki = verify_package(genuine, frozenset({seal_root}))  # one root for both roles: still fine
    assert {f for f, _ in one_pki.failures} == {"certs/tsa-chain.pem", "SHA256SUMS.tsr", "manifest.json.p7s"}


def test_the_cli_pins_each_role(setup: tuple[Path, Path, str, str]) -> None:
    genuine, forged, seal_root, tsa_root = setup

    def cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bidproc.cli", "evidence", "verify", str(path), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )

    roles = ("--seal-root-sha256", seal_root, "--tsa-root-sha256", tsa_root)
    assert cli(genuine, *roles).returncode == 0
    forged_run = cli(forged, *roles)
    assert forged_run.returncode == 1 and "FAILED certs/seal-chain.pem" in forged_run.stdout
    mixed = cli(forged, "--root-sha256", seal_root, "--root-sha256", tsa_root)
    assert mixed.returncode == 2 and "--seal-root-sha256" in mixed.stderr, mixed.stdout + mixed.stderr
