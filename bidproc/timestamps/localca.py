"""The embedded service PKI: a local root, a TSA certificate and a seal certificate.

RSA keys, because pyhanko's in-process timestamper signs with RSA only.

Created once under ``data_dir/keys/local-ca`` on first run. Everything it signs says **NOT QUALIFIED**
in its subject: it proves what the service saw and when, not what an eIDAS qualified TSA would. In
production, configure ``timestamping.tsa_url`` with a qualified TSA.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORG = "bidproc local service PKI (NOT QUALIFIED)"


@dataclass(frozen=True)
class Credential:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class LocalPKI:
    root: x509.Certificate
    tsa: Credential
    seal: Credential
    # The root's CRL (DER), issued once at creation: PKIs made before it existed have none, and then
    # nothing the service seals can carry revocation data (validators say INDETERMINATE, not PASSED).
    crl: bytes | None = None

    def chain_pem(self, which: Credential) -> bytes:
        return which.certificate.public_bytes(serialization.Encoding.PEM) + self.root.public_bytes(
            serialization.Encoding.PEM
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    now: datetime,
    years: int,
    ca: bool,
    eku: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if eku is not None:
        # RFC 3161 §2.3: a TSA certificate has exactly one, critical, EKU: id-kp-timeStamping.
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def _load(directory: Path, name: str) -> Credential:
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / f"{name}.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return Credential(cert, key)


def load_or_create(directory: Path, now: datetime) -> LocalPKI:
    if not (directory / "seal.pem").exists():
        # Built in a private directory, then renamed into place: processes starting together either
        # see no PKI or a whole one, and the first to finish wins.
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        final, directory = directory, Path(tempfile.mkdtemp(prefix=".local-ca-", dir=directory.parent))
        root_key = rsa.generate_private_key(65537, 3072)
        root = _issue("bidproc local root CA", root_key, _name("bidproc local root CA"), root_key, now, 20, True, None)
        (directory / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
        for name, cn, eku in (
            ("tsa", "bidproc local TSA", ExtendedKeyUsageOID.TIME_STAMPING),
            ("seal", "bidproc receipt seal", None),
        ):
            key = rsa.generate_private_key(65537, 3072)
            cert = _issue(cn, key, root.subject, root_key, now, 10, False, eku)
            _write_key(directory / f"{name}.key", key)
            (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # Revocation data for the TSA and seal certificates, so a PAdES seal can be B-LT/B-LTA and pass
        # EN 319 102-1 validation (which requires CRL or OCSP for every certificate). Since the root key
        # is destroyed just below, nothing this CA issued can ever be revoked: one CRL, empty, valid
        # until the root expires, states exactly that.
        (directory / "root.crl").write_bytes(_empty_crl(root, root_key, now))
        # The root key is not needed again: not keeping it means nobody can mint another TSA later.
        del root_key
        try:
            directory.rename(final)
        except OSError:  # another process got there first (or an empty directory was in the way)
            if not (final / "seal.pem").exists():
                shutil.rmtree(final, ignore_errors=True)
                directory.rename(final)
        shutil.rmtree(directory, ignore_errors=True)
        directory = final
    root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
    crl_path = directory / "root.crl"
    crl = crl_path.read_bytes() if crl_path.exists() else None
    return LocalPKI(root=root, tsa=_load(directory, "tsa"), seal=_load(directory, "seal"), crl=crl)


def _empty_crl(root: x509.Certificate, root_key: rsa.RSAPrivateKey, now: datetime) -> bytes:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(root.not_valid_after_utc)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)
