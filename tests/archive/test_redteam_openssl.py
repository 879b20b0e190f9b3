"""Red team: the README's openssl-only procedure for a package, run as an archivist would, on forgeries.

An archivist's machine trusts its system store (``/etc/ssl/certs``); `openssl cms -verify -CAfile F`
trusts that store *as well as* F unless told not to (-no-CApath -no-CAstore). ``SSL_CERT_DIR`` stands
here for a system store holding a public CA (the test PKI) that sold the forger a certificate; the
forger's SHA256SUMS is stamped by the service's TSA (a qualified TSA is a public service: anyone can
have any digest stamped).
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bidproc.archive.evidence import record_stamper
from bidproc.archive.package import sums_text
from bidproc.archive.renewal import renew_all
from bidproc.archive.retrieve import fetch
from bidproc.archive.seal import Sealer
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.runtime import Runtime
from bidproc.timestamps.localca import Credential
from bidproc.timestamps.tsa import RemoteTSA
from tests.archive.bids import ArchivedBid, archived_bid, local_settings, now
from tests.archive.test_package import README_COMMANDS
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401  (a public CA and TSA, over loopback)
from tests.services import ROOT

# The README's check that no file was added (or removed), word for word; it prints the odd names.
README_FILE_LIST = (
    "! { cut -c67- SHA256SUMS; find . -type f ! -path ./SHA256SUMS ! -path ./SHA256SUMS.p7s "
    "! -path ./SHA256SUMS.tsr ! -path ./evidence-record.ers ! -path ./evidence-record.SHA384SUMS "
    "! -path ./evidence-record.SHA512SUMS | cut -c3-; } | LC_ALL=C sort | uniq -c | grep -v '^ *2 '"
)


@pytest.fixture
def bid(tmp_path: Path) -> ArchivedBid:
    return archived_bid(Runtime(local_settings(tmp_path)))


def _run(cmd: str, cwd: Path, env: dict[str, str] | None = None) -> int:
    return subprocess.run(["sh", "-c", cmd], cwd=cwd, capture_output=True, env=env).returncode


def _procedure(pkg: Path, env: dict[str, str] | None = None) -> list[int]:
    return [_run(cmd, pkg, env) for cmd in (*README_COMMANDS, README_FILE_LIST)]


def _system_store(tmp: Path, root_pem: bytes) -> dict[str, str]:
    """An OpenSSL default CA directory holding ``root_pem`` (as `openssl rehash` would name it)."""
    store = tmp / "system-certs"
    store.mkdir()
    (store / "ca.pem").write_bytes(root_pem)
    name = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(store / "ca.pem")], capture_output=True, text=True, check=True
    ).stdout.strip()
    (store / f"{name}.0").write_bytes(root_pem)
    import os

    return {**os.environ, "SSL_CERT_DIR": str(store), "SSL_CERT_FILE": str(store / "ca.pem")}


def test_the_readme_documents_the_file_list_check_verbatim() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert README_FILE_LIST in readme
    for cmd in README_COMMANDS:
        assert cmd in readme


def test_a_seal_by_a_ca_of_the_system_store_does_not_pass_the_readme_procedure(
    bid: ArchivedBid,
    tmp_path: Path,
    pki: TestPKI,  # noqa: F811
) -> None:
    """The forger is Alice Martin, holder of a signing certificate from a CA (the test PKI) that the
    archivist's machine trusts system-wide; her certificate chain travels inside her CMS seal."""
    pkg = tmp_path / "pkg"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)
    env = _system_store(tmp_path, _pem(pki.root_der))
    assert _procedure(pkg, env) == [0, 0, 0, 0]  # the genuine package passes on that machine
    # She changes a document, lists it again, seals the list with her own certificate and has it stamped;
    # certs/ is left as shipped, so the fingerprint loop shows nothing odd.
    target = sorted((pkg / "objects/files").iterdir())[0]
    target.chmod(0o644)
    target.write_bytes(b"another offer")
    entries = [
        (p.relative_to(pkg).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in pkg.rglob("*")
        if p.is_file() and not p.name.startswith("SHA256SUMS")
    ]
    sums = sums_text(entries)
    key = serialization.load_der_private_key(pki.key("signer").dump(), None)
    alice = Sealer(
        Credential(x509.load_der_x509_certificate(pki.der("signer")), key),  # type: ignore[arg-type]
        (pki.der("interm"), pki.root_der),
    )
    stamp = bid.rt.tsa.timestamp(hashlib.sha256(sums).digest(), bid.rt.clock()).response_der
    for name, data in (("SHA256SUMS", sums), ("SHA256SUMS.p7s", alice.seal(sums)), ("SHA256SUMS.tsr", stamp)):
        (pkg / name).chmod(0o644)
        (pkg / name).write_bytes(data)
    # The forgery itself is sound: the seal verifies against Alice's CA, the stamp against the TSA.
    (tmp_path / "public-root.pem").write_bytes(_pem(pki.root_der))
    assert (
        _run(
            f"openssl cms -verify -binary -inform DER -in SHA256SUMS.p7s -content SHA256SUMS "
            f"-CAfile {tmp_path / 'public-root.pem'} -purpose any -out /dev/null",
            pkg,
        )
        == 0
    )
    assert _run(README_COMMANDS[1], pkg, env) == 0 and _run(README_COMMANDS[2], pkg, env) == 0
    assert _run(README_FILE_LIST, pkg, env) == 0
    # What the README said before: -CAfile alone, which adds the system store to the trusted roots.
    assert _run(README_COMMANDS[0].replace(" -no-CApath -no-CAstore", ""), pkg, env) == 0
    codes = _procedure(pkg, env)
    assert codes[0] != 0, codes  # the seal check trusts the package's chain only
    assert not verify_package(pkg).ok


def test_a_timestamp_by_a_tsa_of_the_system_store_does_not_pass(bid: ArchivedBid, tmp_path: Path, pki: TestPKI) -> None:  # noqa: F811
    """`openssl ts -verify -CAfile` trusts only that file: a token of another TSA the machine trusts fails."""
    pkg = tmp_path / "pkg"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)
    env = _system_store(tmp_path, _pem(pki.root_der))
    other = RemoteTSA(pki.tsa_url, 10, roots=(pki.root_der,))
    token = other.timestamp(hashlib.sha256((pkg / "SHA256SUMS").read_bytes()).digest(), now()).response_der
    (pkg / "SHA256SUMS.tsr").chmod(0o644)
    (pkg / "SHA256SUMS.tsr").write_bytes(token)
    assert _run(README_COMMANDS[1], pkg, env) != 0


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("record", [False, True])
def test_the_file_list_check_passes_a_genuine_package(bid: ArchivedBid, tmp_path: Path, record: bool) -> None:
    if record:
        rt = bid.rt
        renew_all(open_archive(rt.settings), record_stamper(rt), rt.clock(), timedelta(days=365))
    pkg = tmp_path / "pkg"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)
    assert (pkg / "evidence-record.ers").exists() == record
    assert _procedure(pkg) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "name",
    [
        "objects/files/withdrawal.pdf",
        "objects/receipt.json\u200b",
        "notes.txt",
        "evidence-record.txt",
        "certs/extra-root.pem",
        "objects/a\nobjects/receipt.json",
    ],
)
def test_an_added_file_fails_the_readme_procedure(bid: ArchivedBid, tmp_path: Path, name: str) -> None:
    pkg = tmp_path / "pkg"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)
    (pkg / name).parent.mkdir(parents=True, exist_ok=True)
    (pkg / name).write_bytes(b"slipped in after sealing")
    codes = _procedure(pkg)
    assert codes[:3] == [0, 0, 0]  # what the procedure checked before: blind to an added file
    assert codes[3] != 0


def test_a_removed_file_fails_the_file_list_check_too(bid: ArchivedBid, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    fetch(open_archive(bid.rt.settings), bid.prefix, pkg)
    (pkg / "objects/journal.json").unlink()
    assert _procedure(pkg)[2:] != [0, 0]
    assert _procedure(pkg)[3] != 0
