"""The qualification step on XAdES reports (the same step as PAdES/CAdES: validate._finish), with the
XAdES tests' loopback PKI (CRL served over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from lxml import etree

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Qualification, RuleOutcome
from bidproc.signature.trust.assess import TrustSettings
from bidproc.signature.trust.lists import Document, TrustedLists, load
from bidproc.signature.validate import validate_file
from tests.trust.builder import NOW, Key, Service, lotl, make_cert, national_list, qc_statements, sign_list
from tests.xades.pki import Identity, PKIServer
from tests.xades.signing import sign_detached

PDF = b"%PDF-1.7 offre technique (test bytes)"


@pytest.fixture(scope="module")
def server() -> Iterator[PKIServer]:
    srv = PKIServer()
    yield srv
    srv.close()


def _lists(root: Key) -> TrustedLists:
    signer, tlso = make_cert("LOTL signer"), make_cert("FR TLSO")
    fr = sign_list(national_list("FR", [Service(root, "XAdES test qualified root")]), tlso)
    lo = sign_list(lotl([("FR", "https://tl.example/fr.xml", [tlso])]), signer)
    return load(Document("lotl", lo), [Document("fr", fr)], NOW, [asn1_x509.Certificate.load(signer.der)])


@pytest.mark.parametrize(
    ("qc", "expected"),
    [
        (qc_statements(sscd=True), Qualification.QESIG),
        (qc_statements(sscd=False), Qualification.ADESIG_QC),
        (None, Qualification.ADESIG),
    ],
)
def test_xades_detached_gets_qualification(server: PKIServer, qc: bytes | None, expected: Qualification) -> None:
    pki = server.pki
    root = Key(pki.root.cert, pki.root.key)  # type: ignore[arg-type]
    crl = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{pki.base}/root.crl")], None, None, None)]
    )
    leaf = make_cert("Alice Qualifiee", issuer=root, qc=qc, extra=(crl,))
    xml = etree.tostring(sign_detached({"offre.pdf": PDF}, Identity(leaf.key, leaf.cert)))
    policy = ValidationPolicy(
        trust_anchors=(pki.root.der,), fetch_timeout_seconds=5, trust=TrustSettings(lists=_lists(root))
    )
    sig = validate_file("offre.xml", xml, policy, {"offre.pdf": PDF}).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    assert sig.qualification is expected, sig.qualification_details
    assert sig.french_rule is not None
    passed = expected is not Qualification.ADESIG
    assert sig.french_rule.certificate_category is (RuleOutcome.PASSED if passed else RuleOutcome.FAILED)


def test_xades_signature_timestamp_from_a_listed_qtst_is_qualified(server: PKIServer) -> None:
    """XAdES timestamps carry their TSA certificate to the qualification step, as PAdES/CAdES ones do."""
    from tests.trust.builder import QTST
    from tests.xades.signing import add_signature_timestamp

    pki = server.pki
    root = Key(pki.root.cert, pki.root.key)  # type: ignore[arg-type]
    tsa = Key(pki.tsa.cert, pki.tsa.key)  # type: ignore[arg-type]
    signer, tlso = make_cert("LOTL signer"), make_cert("FR TLSO")
    services = [Service(root, "XAdES test qualified root"),
                Service(tsa, "XAdES test QTST", service_type=QTST, for_type=None)]
    fr = sign_list(national_list("FR", services), tlso)
    lo = sign_list(lotl([("FR", "https://tl.example/fr.xml", [tlso])]), signer)
    lists = load(Document("lotl", lo), [Document("fr", fr)], NOW, [asn1_x509.Certificate.load(signer.der)])
    crl = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{pki.base}/root.crl")], None, None, None)]
    )
    leaf = make_cert("Alice Qualifiee", issuer=root, qc=qc_statements(sscd=True), extra=(crl,))
    signature = sign_detached({"offre.pdf": PDF}, Identity(leaf.key, leaf.cert))
    add_signature_timestamp(signature, f"{pki.base}/tsa")
    policy = ValidationPolicy(trust_anchors=(pki.root.der,), fetch_timeout_seconds=5, trust=TrustSettings(lists=lists))
    sig = validate_file("offre.xml", etree.tostring(signature), policy, {"offre.pdf": PDF}).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    stamps = [t for t in sig.timestamps if t.kind == "signature"]
    assert stamps and all(t.valid and t.qualified is True for t in stamps), stamps
