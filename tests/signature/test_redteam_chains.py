"""Red-team: certificate paths that chain by name and signature to the trust anchor but break an X.509
rule on the way (RFC 5280 §6.1), each signed for real and validated offline with fresh CRLs for every CA.

Each variant is one rule broken in an otherwise valid chain; the control (same code, no rule broken)
passes, so a variant that passed would be a real false TOTAL_PASSED, not a broken fixture.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication
from bidproc.signature.validate import validate_files

BID = b"Offre: total 61 300 EUR HT"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Node:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    children: list[Node] = field(default_factory=list)


def _name(cn: str, org: str = "Red Team PKI") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


KU_CA = {"key_cert_sign": True, "crl_sign": True, "digital_signature": True}
KU_SIGNER = {"digital_signature": True, "content_commitment": True}
KU_RESPONDER = {"digital_signature": True}


def _ku(**on: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    )
    return x509.KeyUsage(**{n: on.get(n, False) for n in names}, encipher_only=False, decipher_only=False)


def _issue(
    subject: x509.Name,
    issuer: Node | None,
    *,
    ca: bool | None,
    path_length: int | None = None,
    usage: dict[str, bool] | None = None,
    not_after: datetime | None = None,
    permitted_org: str | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    no_check: bool = False,
) -> Node:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if usage is not None:
        builder = builder.add_extension(_ku(**usage), critical=True)
    if permitted_org is not None:
        subtree = x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, permitted_org)]))
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=[subtree], excluded_subtrees=None), True
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if not ca:  # certvalidator looks for OCSP answers only for a certificate naming a responder
        ocsp_url = x509.UniformResourceIdentifier("http://127.0.0.1:9/ocsp")  # offline: never fetched
        access = x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, ocsp_url)
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    if no_check:  # an OCSP responder whose own status nobody checks (RFC 6960 §4.2.2.2.1)
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    node = Node(subject.rfc4514_string(), key, cert)
    if issuer:
        issuer.children.append(node)
    return node


def _crl(ca: Node) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(NOW - timedelta(hours=1))
        .next_update(NOW + timedelta(days=7))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _sign(signer: Node, chain: list[Node]) -> bytes:
    key_der = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    simple = signers.SimpleSigner(
        signing_cert=_asn1(signer.cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(n.cert) for n in chain]),  # type: ignore[no-untyped-call]
    )
    signed = asyncio.run(simple.async_sign_general_data(BID, "sha256", detached=True, use_cades=True))
    return bytes(signed.dump())


def build(variant: str) -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """(signature, root DER, CRLs of every CA) for ``variant``: one rule broken, or none ("control")."""
    root = _issue(_name("Red Root"), None, ca=True, usage=KU_CA)
    kwargs: dict[str, object] = {"ca": True, "usage": KU_CA}
    signer_org = "Red Team PKI"
    if variant == "ca-false":
        kwargs["ca"] = False
    elif variant == "no-basic-constraints":
        kwargs["ca"] = None
    elif variant == "no-key-cert-sign":
        kwargs["usage"] = {"digital_signature": True, "crl_sign": True}
    elif variant == "expired-intermediate":
        kwargs["not_after"] = NOW - timedelta(days=1)
    elif variant == "name-constraints":
        kwargs["permitted_org"] = "Red Team PKI"
        signer_org = "Somebody Else"
    interm = _issue(_name("Red Issuing CA"), root, **kwargs)  # type: ignore[arg-type]
    cas = [root, interm]
    if variant == "path-length":  # root -> interm (pathLen 0) -> sub -> signer
        interm = _issue(_name("Red Issuing CA"), root, ca=True, path_length=0, usage=KU_CA)
        cas = [root, interm]
        sub = _issue(_name("Red Sub CA"), interm, ca=True, usage=KU_CA)
        cas.append(sub)
        interm = sub
    usage = {"key_encipherment": True} if variant == "signer-key-encipherment-only" else KU_SIGNER
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH] if variant == "signer-client-auth-only" else None
    signer = _issue(_name("Bob Bidder", signer_org), interm, ca=False, usage=usage, eku=eku)
    root_der = root.cert.public_bytes(serialization.Encoding.DER)
    return _sign(signer, cas), root_der, tuple(_crl(ca) for ca in cas)


def verdict(variant: str) -> Indication:
    p7s, root, crls = build(variant)
    policy = ValidationPolicy(trust_anchors=(root,), offline=True, extra_crls=crls)
    report = validate_files({"offre.txt": BID, "offre.txt.p7s": p7s}, policy)["offre.txt.p7s"]
    assert len(report.signatures) == 1
    sig = report.signatures[0]
    return sig.indication


def test_control_chain_passes_offline() -> None:
    assert verdict("control") is Indication.TOTAL_PASSED


@pytest.mark.parametrize(
    "variant",
    [
        "ca-false",
        "no-basic-constraints",
        "no-key-cert-sign",
        "expired-intermediate",
        "name-constraints",
        "path-length",
        "signer-key-encipherment-only",
    ],
)
def test_chain_breaking_an_x509_rule_never_passes(variant: str) -> None:
    assert verdict(variant) is not Indication.TOTAL_PASSED


# ---- revocation data from someone other than the signer's CA --------------------------------------


def _ocsp(signer: Node, issuer: Node, responder: Node, status: str = "good") -> bytes:
    from cryptography.x509 import ocsp

    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=signer.cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.GOOD if status == "good" else ocsp.OCSPCertStatus.REVOKED,
        this_update=NOW - timedelta(minutes=30),
        next_update=NOW + timedelta(days=1),
        revocation_time=NOW - timedelta(days=2) if status != "good" else None,
        revocation_reason=None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert).certificates([responder.cert])
    return builder.sign(responder.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _impostor_crl(ca: Node) -> bytes:
    """A CRL naming ``ca`` as issuer (and its key identifier), signed by another key: lists nobody."""
    other = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(NOW - timedelta(minutes=10))
        .next_update(NOW + timedelta(days=7))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .add_extension(x509.CRLNumber(2), critical=False)
    )
    return builder.sign(other, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def revocation_verdict(variant: str) -> Indication:
    """The signer's status from an OCSP response (or a CRL) chosen by ``variant``; the CA's from the root."""
    root = _issue(_name("Red Root"), None, ca=True, usage=KU_CA)
    interm = _issue(_name("Red Issuing CA"), root, ca=True, usage=KU_CA)
    signer = _issue(_name("Bob Bidder"), interm, ca=False, usage=KU_SIGNER)
    ocsp_eku = [x509.ObjectIdentifier("1.3.6.1.5.5.7.3.9")]  # id-kp-OCSPSigning
    ocsps: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = (_crl(root),)
    if variant == "control-ocsp":
        ocsps = (
            _ocsp(
                signer,
                interm,
                _issue(_name("Red OCSP"), interm, ca=False, usage=KU_RESPONDER, eku=ocsp_eku, no_check=True),
            ),
        )
    elif variant == "ocsp-responder-of-another-ca":  # delegated by the root, not by the signer's issuer
        ocsps = (
            _ocsp(
                signer,
                interm,
                _issue(_name("Red OCSP"), root, ca=False, usage=KU_RESPONDER, eku=ocsp_eku, no_check=True),
            ),
        )
    elif variant == "ocsp-responder-without-eku":
        ocsps = (_ocsp(signer, interm, _issue(_name("Red OCSP"), interm, ca=False, usage=KU_RESPONDER, no_check=True)),)
    elif variant == "ocsp-signed-by-the-signer":
        ocsps = (_ocsp(signer, interm, signer),)
    elif variant == "control-crl":
        crls += (_crl(interm),)
    elif variant == "crl-of-an-impostor-ca":
        crls += (_impostor_crl(interm),)
    policy = ValidationPolicy(
        trust_anchors=(root.cert.public_bytes(serialization.Encoding.DER),),
        offline=True,
        extra_crls=crls,
        extra_ocsps=ocsps,
    )
    p7s = _sign(signer, [root, interm])
    return validate_files({"offre.txt": BID, "offre.txt.p7s": p7s}, policy)["offre.txt.p7s"].signatures[0].indication


@pytest.mark.parametrize("variant", ["control-ocsp", "control-crl"])
def test_revocation_data_from_the_signers_ca_passes(variant: str) -> None:
    assert revocation_verdict(variant) is Indication.TOTAL_PASSED


@pytest.mark.parametrize(
    "variant",
    [
        "ocsp-responder-of-another-ca",
        "ocsp-responder-without-eku",
        "ocsp-signed-by-the-signer",
        "crl-of-an-impostor-ca",
    ],
)
def test_revocation_data_not_from_the_signers_ca_proves_nothing(variant: str) -> None:
    assert revocation_verdict(variant) is not Indication.TOTAL_PASSED
