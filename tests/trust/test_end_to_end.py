"""Qualification through the real validation path: CAdES and PAdES signed with QC certificates issued by
the test PKI's CA, validated against the live PKI with synthetic trusted lists (issue 12, items 2 and 4)."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stdout
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign import signers
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Qualification, RuleOutcome, SignatureReport
from bidproc.signature.trust.assess import TrustSettings
from bidproc.signature.trust.documents import Document
from bidproc.signature.trust.lists import TrustedLists, load
from bidproc.signature.validate import validate_file
from tests.pki import TestPKI
from tests.trust.builder import NOW, QTST, Key, Service, lotl, make_cert, national_list, qc_statements, sign_list

BID = b"Offre financiere: 120 000 EUR HT"


def _key(pki: TestPKI, label: str) -> Key:
    cert = x509.load_der_x509_certificate(pki.der(label))
    key = serialization.load_der_private_key(pki.key(label).dump(), None)
    return Key(cert, key)  # type: ignore[arg-type]


def _leaf(pki: TestPKI, qc: bytes | None) -> Key:
    """A signer certificate from the test PKI's intermediate CA, with its CRL distribution point."""
    exts = x509.load_der_x509_certificate(pki.der("signer")).extensions
    crl_dp = exts.get_extension_for_class(x509.CRLDistributionPoints)
    aia = exts.get_extension_for_class(x509.AuthorityInformationAccess)
    return make_cert(
        "Marie Curie",
        issuer=_key(pki, "interm"),
        qc=qc,
        not_before=NOW - timedelta(days=30),
        days=400,
        extra=(crl_dp.value, aia.value),
    )


def _simple_signer(pki: TestPKI, leaf: Key) -> signers.SimpleSigner:
    der_key = leaf.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(leaf.der),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs([pki.cert("interm"), pki.cert("root")]),
    )


def _sign(pki: TestPKI, leaf: Key) -> bytes:
    signer = _simple_signer(pki, leaf)

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            stamper = HTTPTimeStamper(pki.tsa_url, session=session)
            out = await signer.async_sign_general_data(BID, "sha256", detached=True, timestamper=stamper)
            return bytes(out.dump())

    return asyncio.run(go())


def _make_lists(pki: TestPKI, listed: str) -> tuple[bytes, bytes, Key]:
    signer, tlso = make_cert("LOTL signer"), make_cert("FR TLSO")
    services = [
        Service(_key(pki, listed), "Test PKI qualified CA"),
        Service(_key(pki, "tsa"), "Test PKI QTST", service_type=QTST, for_type=None),
    ]
    fr = sign_list(national_list("FR", services), tlso)
    return sign_list(lotl([("FR", "https://tl.example/fr.xml", [tlso])]), signer), fr, signer


@pytest.fixture(scope="module")
def lists_for_pki(pki: TestPKI) -> tuple[bytes, bytes, Key]:
    """A LOTL and an FR list naming the test PKI's intermediate CA (CA/QC) and its TSA (QTST)."""
    return _make_lists(pki, "interm")


@pytest.fixture(scope="module")
def lists_naming_root(pki: TestPKI) -> tuple[bytes, bytes, Key]:
    """The same, naming the test PKI's root as the CA/QC service (the signer's CA is in between)."""
    return _make_lists(pki, "root")


def _lists(lists_for_pki: tuple[bytes, bytes, Key], fr: bytes | None = None) -> TrustedLists:
    lotl_xml, good_fr, signer = lists_for_pki
    return load(
        Document("lotl.xml", lotl_xml),
        [Document("fr.xml", fr or good_fr)],
        NOW,
        [asn1_x509.Certificate.load(signer.der)],
    )


def _validate(pki: TestPKI, p7s: bytes, lists: TrustedLists | None) -> SignatureReport:
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), trust=TrustSettings(lists=lists))
    report = validate_file("offre.txt.p7s", p7s, policy, {"offre.txt": BID})
    assert len(report.signatures) == 1
    return report.signatures[0]


@pytest.mark.parametrize(
    ("qc", "expected"),
    [
        (qc_statements(sscd=True), Qualification.QESIG),
        (qc_statements(sscd=False), Qualification.ADESIG_QC),
        (None, Qualification.ADESIG),
    ],
)
def test_cades_qualification_and_qtst(
    pki: TestPKI, lists_for_pki: tuple[bytes, bytes, Key], qc: bytes | None, expected: Qualification
) -> None:
    sig = _validate(pki, _sign(pki, _leaf(pki, qc)), _lists(lists_for_pki))
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    assert sig.qualification is expected, sig.qualification_details
    stamp = sig.timestamps[0]
    assert stamp.kind == "signature" and stamp.valid and stamp.qualified is True  # the TSA is a listed QTST
    assert sig.french_rule is not None
    category = RuleOutcome.FAILED if expected is Qualification.ADESIG else RuleOutcome.PASSED
    assert sig.french_rule.certificate_category is category
    assert sig.french_rule.compliant is (category is RuleOutcome.PASSED)


def test_broken_list_leaves_the_signature_verdict_alone(pki: TestPKI, lists_for_pki: tuple[bytes, bytes, Key]) -> None:
    """With the only national list broken, the signature's indication is what it is without lists."""
    p7s = _sign(pki, _leaf(pki, qc_statements(sscd=True)))
    broken = lists_for_pki[1].replace(b"Test PKI qualified CA", b"Test PKI qualified CX", 1)
    lists = _lists(lists_for_pki, broken)
    assert not lists.usable and lists.problems
    with_broken, without = _validate(pki, p7s, lists), _validate(pki, p7s, None)
    assert (with_broken.indication, with_broken.subindication) == (without.indication, without.subindication)
    assert with_broken.indication is Indication.TOTAL_PASSED
    assert with_broken.qualification is Qualification.NA
    assert any(d.startswith("trust.list_skipped") for d in with_broken.qualification_details)
    assert with_broken.timestamps[0].qualified is None


def test_cli_verify_with_lotl_alone_and_trust_show(
    pki: TestPKI, lists_naming_root: tuple[bytes, bytes, Key], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bidproc verify --lotl --trusted-list`` with no --trust-anchor (the listed root anchors the chain;
    the intermediate CA comes from the signature's own certificates) and ``bidproc trust show``."""
    from bidproc.cli import main

    lotl_xml, fr, signer = lists_naming_root
    (tmp_path / "lotl.xml").write_bytes(lotl_xml)
    (tmp_path / "fr.xml").write_bytes(fr)
    (tmp_path / "lotl-signer.pem").write_bytes(signer.pem)
    (tmp_path / "offre.txt").write_bytes(BID)
    (tmp_path / "offre.txt.p7s").write_bytes(_sign(pki, _leaf(pki, qc_statements(sscd=True))))
    monkeypatch.setenv("BIDPROC_SIGNATURE_LOTL_SIGNER_FILES", str(tmp_path / "lotl-signer.pem"))
    monkeypatch.setenv("BIDPROC_SERVICE_DATA_DIR", str(tmp_path / "var"))
    out = io.StringIO()
    args = ["verify", str(tmp_path / "offre.txt.p7s"), "--detached-data", str(tmp_path / "offre.txt")]
    args += ["--lotl", str(tmp_path / "lotl.xml"), "--trusted-list", str(tmp_path / "fr.xml")]
    with redirect_stdout(out):
        code = main(args)
    doc = json.loads(out.getvalue())
    sig = doc["signatures"][0]
    assert code == 0 and sig["indication"] == "TOTAL_PASSED" and sig["qualification"] == "QESig", json.dumps(sig)
    assert sig["french_rule"]["certificate_category"] == "passed" and sig["french_rule"]["compliant"] is True
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            [
                "trust",
                "show",
                "--lotl",
                str(tmp_path / "lotl.xml"),
                "--trusted-list",
                str(tmp_path / "fr.xml"),
                "--offline",
                "--format",
                "json",
            ]
        )
    shown = json.loads(out.getvalue())
    assert code == 0 and [(s["kind"], s["territory"], s["signature"], s["used"]) for s in shown] == [
        ("LOTL", "EU", "valid", True),
        ("TL", "FR", "valid", True),
    ]
    # a tampered national list: shown as invalid, skipped, exit 1; verify still validates the signature
    (tmp_path / "fr.xml").write_bytes(fr.replace(b"Test PKI QTST", b"Test PKI QTSX", 1))
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            [
                "trust",
                "show",
                "--lotl",
                str(tmp_path / "lotl.xml"),
                "--trusted-list",
                str(tmp_path / "fr.xml"),
                "--offline",
            ]
        )
    assert code == 1 and "invalid" in out.getvalue() and "SKIPPED" in out.getvalue()


def test_pades_gets_the_same_qualification_step(pki: TestPKI, lists_for_pki: tuple[bytes, bytes, Key]) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields
    from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner

    from tests.signature.signing import make_pdf

    leaf = _leaf(pki, qc_statements(sscd=True))
    simple = _simple_signer(pki, leaf)

    async def go() -> bytes:
        async with aiohttp.ClientSession() as session:
            meta = PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES)
            stamper = HTTPTimeStamper(pki.tsa_url, session=session)
            writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf()), strict=False)
            out = await PdfSigner(meta, simple, timestamper=stamper).async_sign_pdf(writer)
            return bytes(out.getvalue())

    pdf = asyncio.run(go())
    policy = ValidationPolicy(trust_anchors=(pki.root_der,), trust=TrustSettings(lists=_lists(lists_for_pki)))
    sig = validate_file("offre.pdf", pdf, policy).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    assert sig.qualification is Qualification.QESIG and sig.timestamps[0].qualified is True
    assert sig.french_rule is not None and sig.french_rule.compliant


def test_anchors_from_lists_are_listed_roots_only(
    pki: TestPKI, lists_for_pki: tuple[bytes, bytes, Key], lists_naming_root: tuple[bytes, bytes, Key]
) -> None:
    from bidproc.signature.trust.source import anchors_from

    assert anchors_from(_lists(lists_for_pki)) == ()  # interm and TSA are not self-signed
    assert anchors_from(_lists(lists_naming_root)) == (pki.root_der,)
    assert anchors_from(None) == ()


@pytest.mark.parametrize("flag", ["--lotl", "--trusted-list"])
def test_cli_unreadable_list_file_is_a_usage_error(tmp_path: Path, flag: str) -> None:
    from bidproc.cli import main

    (tmp_path / "offre.txt.p7s").write_bytes(b"not even a signature")
    assert main(["verify", str(tmp_path / "offre.txt.p7s"), flag, str(tmp_path / "missing.xml")]) == 2


def test_cli_equivalent_authority_from_configuration(
    pki: TestPKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``signature.equivalent_ca_files``: a signer under an accepted equivalent CA passes the French
    category without any trusted list; the same signature without that setting leaves it unchecked."""
    from bidproc.cli import main

    (tmp_path / "offre.txt").write_bytes(BID)
    (tmp_path / "offre.txt.p7s").write_bytes(_sign(pki, _leaf(pki, None)))
    (tmp_path / "root.pem").write_bytes(_key(pki, "root").pem)
    (tmp_path / "equivalent.pem").write_bytes(_key(pki, "interm").pem)
    monkeypatch.setenv("BIDPROC_SERVICE_DATA_DIR", str(tmp_path / "var"))
    args = ["verify", str(tmp_path / "offre.txt.p7s"), "--detached-data", str(tmp_path / "offre.txt")]
    args += ["--trust-anchor", str(tmp_path / "root.pem")]
    rules = []
    for equivalent in ("", str(tmp_path / "equivalent.pem")):
        monkeypatch.setenv("BIDPROC_SIGNATURE_EQUIVALENT_CA_FILES", equivalent)
        out = io.StringIO()
        with redirect_stdout(out):
            assert main(args) == 0
        rules.append(json.loads(out.getvalue())["signatures"][0]["french_rule"])
    assert (rules[0]["certificate_category"], rules[0]["compliant"]) == ("not_checked", False)
    assert (rules[1]["certificate_category"], rules[1]["compliant"]) == ("passed", True)
    assert any("equivalent authority" in d for d in rules[1]["details"])


def test_the_pipeline_runtime_uses_the_configured_lists(
    pki: TestPKI, lists_for_pki: tuple[bytes, bytes, Key], tmp_path: Path
) -> None:
    """What the workers validate with (``Runtime.validation_policy``) carries the ``[signature]`` lists."""
    from datetime import UTC, datetime

    from bidproc.config import load_settings
    from bidproc.runtime import Runtime

    lotl_xml, fr_xml, signer = lists_for_pki
    (tmp_path / "lotl.xml").write_bytes(lotl_xml)
    (tmp_path / "fr.xml").write_bytes(fr_xml)
    (tmp_path / "lotl-signer.der").write_bytes(signer.der)
    (tmp_path / "root.der").write_bytes(pki.root_der)
    settings = load_settings(env={
        "BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "data"),
        "BIDPROC_SIGNATURE_TRUST_ANCHOR_FILES": str(tmp_path / "root.der"),
        "BIDPROC_SIGNATURE_LOTL": str(tmp_path / "lotl.xml"),
        "BIDPROC_SIGNATURE_TRUSTED_LIST_FILES": str(tmp_path / "fr.xml"),
        "BIDPROC_SIGNATURE_LOTL_SIGNER_FILES": str(tmp_path / "lotl-signer.der"),
    })
    now = [datetime.now(UTC)]
    rt = Runtime(settings, clock=lambda: now[0])
    policy = rt.validation_policy()
    report = validate_file("offre.txt.p7s", _sign(pki, _leaf(pki, qc_statements(sscd=True))), policy,
                           {"offre.txt": BID})
    assert report.signatures[0].qualification is Qualification.QESIG, report.signatures[0].qualification_details
    assert rt.validation_policy().trust is policy.trust  # loaded once...
    now[0] += timedelta(hours=25)
    assert rt.validation_policy().trust is not policy.trust  # ...and again once older than trust_refresh_hours
    unconfigured = Runtime(load_settings(env={"BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "d2")}))
    assert unconfigured.trusted_lists() is None
