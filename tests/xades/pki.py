"""A small test PKI (cryptography) whose CRL and RFC 3161 TSA are served over loopback HTTP.

Root CA → signer, expired signer, revoked signer, TSA; a second, untrusted root → its own signer. The
signers' certificates name a CRL distribution point on the loopback server, so online validation really
fetches revocation data. The TSA is pyhanko's ``DummyTimeStamper`` behind a tiny ``http.server``: the
signing side sends it a real RFC 3161 request over HTTP. ``/tsa-past`` answers with a time two days ago
(for "revoked/expired after signing, with a proof of existence before").
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Identity:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bidproc Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _issue(
    cn: str,
    issuer: Identity | None,
    *,
    ca: bool = False,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=365),
    crl_url: str | None = None,
    ocsp_url: str | None = None,
    tsa: bool = False,
) -> Identity:
    # pyhanko's DummyTimeStamper signs with RSA only; everything else uses fast EC keys.
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if tsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca and not tsa,
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
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    if tsa:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Identity(key, cert)


class LoopbackPKI:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        crl_url = f"{self.base}/root.crl"
        self.root = _issue(
            "Test Root CA", None, ca=True, not_before=NOW - timedelta(days=3650), not_after=NOW + timedelta(days=3650)
        )
        self.signer = _issue("Alice Martin", self.root, crl_url=crl_url)
        self.expired = _issue(
            "Expired Signer",
            self.root,
            not_before=NOW - timedelta(days=400),
            not_after=NOW - timedelta(days=1),
            crl_url=crl_url,
        )
        self.revoked = _issue("Revoked Signer", self.root, crl_url=crl_url)
        # its CRL lives on a port nobody listens on: the revocation source is down
        self.unreachable = _issue("Carol Unreachable", self.root, crl_url=f"http://127.0.0.1:{_dead_port()}/root.crl")
        # revocation by OCSP only (AIA to the loopback responder), and OCSP on a port nobody listens on
        self.ocsp_signer = _issue("Olivia Ocsp", self.root, ocsp_url=f"{self.base}/ocsp")
        self.ocsp_unreachable = _issue("Oscar Unreachable", self.root, ocsp_url=f"http://127.0.0.1:{_dead_port()}/ocsp")
        self.tsa = _issue("Test TSA", self.root, not_before=NOW - timedelta(days=3650), tsa=True)
        # a TSA whose status is given by OCSP only (for B-LT with OCSP responses alone)
        self.ocsp_tsa = _issue("OCSP TSA", self.root, tsa=True, ocsp_url=f"{self.base}/ocsp")
        self.other_root = _issue("Untrusted Root CA", None, ca=True)
        self.untrusted = _issue("Mallory Untrusted", self.other_root)
        self.untrusted_tsa = _issue("Rogue TSA", self.other_root, tsa=True)
        self.revoked_at = NOW - timedelta(days=1)
        self.crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.cert.subject)
            .last_update(NOW - timedelta(hours=1))
            .next_update(NOW + timedelta(days=7))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(self.revoked.cert.serial_number)
                .revocation_date(self.revoked_at)
                .build()
            )
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()), critical=False
            )
            .sign(self.root.key, hashes.SHA256())
            .public_bytes(Encoding.DER)
        )
        tsa_cert = asn1_x509.Certificate.load(self.tsa.der)
        tsa_key = asn1_keys.PrivateKeyInfo.load(
            self.tsa.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        )
        self.stampers = {
            "/tsa": DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key),
            "/tsa-past": DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key, fixed_dt=NOW - timedelta(days=2)),
            "/tsa-untrusted": DummyTimeStamper(
                tsa_cert=asn1_x509.Certificate.load(self.untrusted_tsa.der),
                tsa_key=asn1_keys.PrivateKeyInfo.load(
                    self.untrusted_tsa.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
                ),
            ),
            "/tsa-ocsp": DummyTimeStamper(
                tsa_cert=asn1_x509.Certificate.load(self.ocsp_tsa.der),
                tsa_key=asn1_keys.PrivateKeyInfo.load(
                    self.ocsp_tsa.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
                ),
            ),
        }
        self.requests: list[str] = []

    def ocsp_response(self, request_der: bytes) -> bytes:
        """A root-signed OCSP answer for one of the root's certificates (revoked ones say so)."""
        request = ocsp.load_der_ocsp_request(request_der)
        issued = [
            self.signer,
            self.expired,
            self.revoked,
            self.unreachable,
            self.ocsp_signer,
            self.ocsp_unreachable,
            self.tsa,
            self.ocsp_tsa,
        ]
        subject = next((i for i in issued if i.cert.serial_number == request.serial_number), None)
        if subject is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                Encoding.DER
            )
        revoked = subject is self.revoked
        now = datetime.now(UTC).replace(microsecond=0)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=subject.cert,
                issuer=self.root.cert,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                this_update=now - timedelta(minutes=1),
                next_update=now + timedelta(days=1),
                revocation_time=self.revoked_at if revoked else None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.root.cert)
        )
        return builder.sign(self.root.key, hashes.SHA256()).public_bytes(Encoding.DER)


def _handler(pki_ref: list[LoopbackPKI]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
            pass

        def _reply(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            pki = pki_ref[0]
            pki.requests.append(f"GET {self.path}")
            if self.path == "/root.crl":
                self._reply(pki.crl, "application/pkix-crl")
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            pki = pki_ref[0]
            pki.requests.append(f"POST {self.path}")
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/ocsp":
                self._reply(pki.ocsp_response(body), "application/ocsp-response")
                return
            stamper = pki.stampers.get(self.path)
            if stamper is None:
                self.send_error(404)
                return
            response = stamper.request_tsa_response(tsp.TimeStampReq.load(body))
            self._reply(response.dump(), "application/timestamp-reply")

    return Handler


class PKIServer:
    """Start the loopback server first (its port goes into the certificates), then the PKI."""

    def __init__(self) -> None:
        self._ref: list[LoopbackPKI] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._ref))
        self.pki = LoopbackPKI(self.httpd.server_address[1])
        self._ref.append(self.pki)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
