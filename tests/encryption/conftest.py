"""Recipient key pairs for the sealing tests, made here (cryptography), with PEM copies for openssl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyhanko_certvalidator  # noqa: F401  (as in the service: it widens what asn1crypto parses, see test_envelope)
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bidproc.encryption.recipients import PrivateKey


@dataclass(frozen=True)
class Holder:
    """A recipient: key, certificate, and their PEM files for openssl."""

    key: PrivateKey
    cert: x509.Certificate
    key_pem: Path
    cert_pem: Path


def make_cert(key: PrivateKey, name: str, usage: x509.KeyUsage | None = None) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
               .not_valid_after(now + timedelta(days=30))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(key, hashes.SHA256())


def holder(directory: Path, name: str, key: PrivateKey) -> Holder:
    cert = make_cert(key, name)
    key_pem, cert_pem = directory / f"{name}.key.pem", directory / f"{name}.cert.pem"
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Holder(key, cert, key_pem, cert_pem)


@pytest.fixture(scope="session")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recipients")


@pytest.fixture(scope="session")
def main(keydir: Path) -> Holder:
    """The buyer's main encryption certificate (RSA)."""
    return holder(keydir, "main", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def backup(keydir: Path) -> Holder:
    """The buyer's backup certificate (RSA), kept apart."""
    return holder(keydir, "backup", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_holder(keydir: Path) -> Holder:
    return holder(keydir, "ec", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def stranger(keydir: Path) -> Holder:
    return holder(keydir, "stranger", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def openssl_decrypt(envelope: Path, who: Holder) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(envelope), "-recip",
                           str(who.cert_pem), "-inkey", str(who.key_pem), "-binary"], capture_output=True, check=False)


def openssl_encrypt(plain: Path, out: Path, *recipients: Holder, extra: tuple[str, ...] = ()) -> None:
    args = ["openssl", "cms", "-encrypt", "-aes-256-gcm", "-in", str(plain), "-out", str(out), "-binary",
            "-outform", "DER"]
    for r in recipients:
        args += ["-recip", str(r.cert_pem)]
        if isinstance(r.key, rsa.RSAPrivateKey):
            args += ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]
    subprocess.run([*args, *extra], check=True, capture_output=True)  # -keyopt applies to the last -recip
