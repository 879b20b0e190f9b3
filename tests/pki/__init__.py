"""A real test PKI for signature tests, built with certomancer and served over loopback HTTP.

Root and intermediate CA, an OCSP responder, CRL repositories, an RFC 3161 TSA and signer certificates
for every case the signature tests need (valid, expired, revoked before/after signing, untrusted root,
dead OCSP responder). Dates are relative to the session start ``t0`` so the suite never ages out.
Keys are generated per session (EC P-256: fast) into a temporary directory; nothing secret is committed.

Use the ``pki`` fixture from :mod:`tests.pki.fixtures` (``from tests.pki.fixtures import pki``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig, KeyLabel, PKIArchitecture
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import BaseWSGIServer, make_server

ARCH = "bidproc-test"
KEYS = (
    "root",
    "interm",
    "ocsp",
    "tsa",
    "signer",
    "expired",
    "revoked-before",
    "revoked-after",
    "rogue-root",
    "rogue-signer",
    "ocsp-down",
)
FAKE_TIME_HEADER = "X-Certomancer-Fake-Time"  # certomancer answers "as of" this time (revocation after signing)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+0000")


def _ku(*usages: str) -> dict[str, Any]:
    return {"id": "key_usage", "critical": True, "smart-value": {"schema": "key-usage", "params": list(usages)}}


def _crl_dp(repo: str) -> dict[str, Any]:
    params = {"crl-repo-names": [repo]}
    return {"id": "crl_distribution_points", "smart-value": {"schema": "crl-dist-url", "params": params}}


def _aia(responder: str) -> dict[str, Any]:
    return {
        "id": "authority_information_access",
        "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": [responder]}},
    }


def _config(t0: datetime, dead_port: int) -> dict[str, Any]:
    far = {"valid-from": _iso(t0 - timedelta(days=3650)), "valid-to": _iso(t0 + timedelta(days=7300))}
    signer_validity = {"valid-from": _iso(t0 - timedelta(days=60)), "valid-to": _iso(t0 + timedelta(days=730))}
    ca_ext = [
        {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
        _ku("digital_signature", "key_cert_sign", "crl_sign"),
    ]
    signer_ext = [_ku("digital_signature", "non_repudiation"), _crl_dp("interm"), _aia("interm")]
    dead_aia = {
        "id": "authority_information_access",
        "value": [
            {
                "access_method": "ocsp",
                "access_location": {"uniform_resource_identifier": f"http://127.0.0.1:{dead_port}/ocsp"},
            }
        ],
    }
    certs: dict[str, Any] = {
        "root": {"subject": "root", "issuer": "root", "validity": far, "extensions": ca_ext},
        "interm": {"issuer": "root", "validity": far, "extensions": [*ca_ext, _crl_dp("root")]},
        "ocsp": {
            "issuer": "interm",
            "validity": far,
            "extensions": [
                _ku("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                {"id": "ocsp_no_check"},
            ],
        },
        "tsa": {
            "issuer": "root",
            "validity": far,
            "extensions": [
                _ku("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
                _crl_dp("root"),
            ],
        },
        "signer": {"issuer": "interm", "validity": signer_validity, "extensions": signer_ext},
        "expired": {
            "template": "signer",
            "validity": {"valid-from": _iso(t0 - timedelta(days=400)), "valid-to": _iso(t0 - timedelta(days=30))},
        },
        "revoked-before": {
            "template": "signer",
            "revocation": {"revoked-since": _iso(t0 - timedelta(days=1)), "reason": "key_compromise"},
        },
        "revoked-after": {
            "template": "signer",
            "revocation": {"revoked-since": _iso(t0 + timedelta(hours=1)), "reason": "key_compromise"},
        },
        "ocsp-down": {
            "issuer": "interm",
            "validity": signer_validity,  # OCSP only, and nobody answers
            "extensions": [_ku("digital_signature", "non_repudiation"), dead_aia],
        },
        "rogue-root": {"subject": "rogue-root", "issuer": "rogue-root", "validity": far, "extensions": ca_ext},
        "rogue-signer": {
            "issuer": "rogue-root",
            "validity": signer_validity,
            "extensions": [_ku("digital_signature", "non_repudiation")],
        },
    }
    for label, spec in certs.items():
        spec.setdefault("subject", label)
        spec.setdefault("subject-key", label)
        if "issuer" in spec:
            spec.setdefault("authority-key", spec["issuer"])
    entities = {
        "root": {"common-name": "bidproc Test Root CA"},
        "interm": {"common-name": "bidproc Test Issuing CA"},
        "ocsp": {"common-name": "bidproc Test OCSP"},
        "tsa": {"common-name": "bidproc Test TSA"},
        "signer": {"common-name": "Alice Martin", "serial-number": "FR-123456789"},
        "expired": {"common-name": "Eve Expired"},
        "revoked-before": {"common-name": "Rita Revoked-Before"},
        "revoked-after": {"common-name": "Ralph Revoked-After"},
        "ocsp-down": {"common-name": "Olga OCSP-Down"},
        "rogue-root": {"common-name": "Rogue Root CA"},
        "rogue-signer": {"common-name": "Mallory Rogue"},
    }
    return {
        "keysets": {ARCH: {"keys": {k: {"path": f"{k}.key.pem"} for k in KEYS}}},
        "pki-architectures": {
            ARCH: {
                "keyset": ARCH,
                "entity-defaults": {"country-name": "FR", "organization-name": "bidproc Test PKI"},
                "entities": entities,
                "certs": certs,
                "services": {
                    "ocsp": {"interm": {"for-issuer": "interm", "responder-cert": "ocsp", "signing-key": "ocsp"}},
                    "crl-repo": {
                        "root": {"for-issuer": "root", "signing-key": "root", "simulated-update-schedule": "P90D"},
                        "interm": {"for-issuer": "interm", "signing-key": "interm", "simulated-update-schedule": "P7D"},
                    },
                    "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
                },
            }
        },
    }


@dataclass
class TestPKI:
    """A built PKI; ``base_url`` is where its services answer once :func:`serve` runs."""

    __test__ = False  # not a pytest class
    arch: PKIArchitecture
    base_url: str
    t0: datetime
    dead_ocsp_url: str
    requests: list[str] = field(default_factory=list)  # paths served, in order

    def cert(self, label: str) -> x509.Certificate:
        return self.arch.get_cert(CertLabel(label))

    def der(self, label: str) -> bytes:
        return bytes(self.cert(label).dump())

    def key(self, label: str) -> asn1_keys.PrivateKeyInfo:
        return self.arch.key_set.get_private_key(KeyLabel(label))

    @property
    def root_der(self) -> bytes:
        return self.der("root")

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/{ARCH}/tsa/tsa"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/{ARCH}/ocsp/interm"

    def chain(self, label: str) -> list[x509.Certificate]:
        """The certificates a signer embeds: its own and every CA above it (root included)."""
        return [self.cert(str(lbl)) for lbl in self.arch.get_chain(CertLabel(label))]


def build_pki(
    directory: Path, port: int, dead_port: int, t0: datetime | None = None, keep_keys: bool = False
) -> TestPKI:
    """Generate keys into ``directory`` (or reuse them with ``keep_keys``) and build the certificates."""
    t0 = (t0 or datetime.now(UTC)).replace(microsecond=0)
    for name in KEYS:
        if keep_keys and (directory / f"{name}.key.pem").exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (directory / f"{name}.key.pem").write_bytes(pem)
    base = f"http://127.0.0.1:{port}"
    config = CertomancerConfig(_config(t0, dead_port), key_search_dir=str(directory), external_url_prefix=base)
    arch = config.get_pki_arch(ArchLabel(ARCH))
    return TestPKI(arch=arch, base_url=base, t0=t0, dead_ocsp_url=f"http://127.0.0.1:{dead_port}/ocsp")


@contextmanager
def serve(pki: TestPKI, port: int) -> Iterator[BaseWSGIServer]:
    """Serve OCSP, CRLs, certificates and the TSA on 127.0.0.1:port in a daemon thread."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per OCSP request is noise
    animator = Animator(AnimatorArchStore({pki.arch.arch_label: pki.arch}), with_web_ui=False)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        pki.requests.append(str(environ.get("PATH_INFO", "")))  # tests count fetches (revocation cache)
        return animator(environ, start_response)

    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="certomancer", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
