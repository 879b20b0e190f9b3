"""CAdES (detached .p7s, enveloping .p7m) and ASiC containers against the live test PKI."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from bidproc.signature.cades.validator import enveloped_content, load_signed_data
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, RuleOutcome, SignatureFormat, SubIndication
from bidproc.signature.validate import content_sha256, enveloped_content_of, validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.signing import (
    add_revocation_values,
    asic_e,
    asic_manifest,
    asic_s,
    fetch_crl,
    fetch_ocsp,
    make_pdf,
    sign_cms,
    sign_pdf,
)

BID = b"Memoire technique: delai 3 semaines, prix 12 000 EUR"


@pytest.fixture(scope="module")
def p7s(pki: TestPKI) -> bytes:
    return sign_cms(BID, pki)


def policy(pki: TestPKI, **kw: object) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,), **kw)  # type: ignore[arg-type]


def test_detached_with_timestamp_paired_by_digest_not_name(pki: TestPKI, p7s: bytes) -> None:
    files = {"offre.p7s": p7s, "memoire-technique.txt": BID, "offre": b"same stem, other content"}
    reports = validate_files(files, policy(pki))
    assert set(reports) == {"offre.p7s"}  # only files that are or carry signatures
    sig = reports["offre.p7s"].signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_T)
    assert sig.signed_data == ("memoire-technique.txt",)
    assert sig.timestamps[0].kind == "signature" and sig.timestamps[0].valid
    assert sig.best_signature_time == sig.timestamps[0].time
    assert sig.french_rule is not None and sig.french_rule.bottom_line
    assert sig.french_rule.integrity is RuleOutcome.PASSED  # checked, not left "not_checked"


def test_detached_over_the_wrong_file_is_a_hash_failure(pki: TestPKI, p7s: bytes) -> None:
    report = validate_file("offre.txt.p7s", p7s, policy(pki), {"offre.txt": BID + b" (modifie)"})
    sig = report.signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
    assert sig.signed_data == ("offre.txt",)
    assert any(w.startswith("signature.detached_paired_by_name") for w in sig.warnings)
    assert sig.french_rule is not None and "integrity" in sig.french_rule.failed


def test_detached_without_its_data_in_the_bid(pki: TestPKI, p7s: bytes) -> None:
    sig = validate_file("offre.p7s", p7s, policy(pki), {"autre.pdf": b"%PDF-1.7 unrelated"}).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)


def test_enveloping_p7m_and_its_content(pki: TestPKI) -> None:
    p7m = sign_cms(BID, pki, detached=False)
    sig = validate_file("offre.pdf.p7m", p7m, policy(pki)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_T)
    sd = load_signed_data(p7m)
    assert sd is not None and enveloped_content(sd) == BID
    assert enveloped_content_of(p7m) == BID and enveloped_content_of(sign_cms(BID, pki)) is None
    assert enveloped_content_of(b"%PDF-1.7") is None


def test_deposit_of_the_p7m_file_is_the_signature_proof_of_existence(pki: TestPKI) -> None:
    """The receipt lists the .p7m (and .p7s) as received, not the document inside: its deposit time
    proves the enveloping signature existed then, as for PAdES (the inner content's hash is not in it)."""
    earlier = pki.t0 - timedelta(minutes=5)
    for detached in (False, True):
        cms_file = sign_cms(BID, pki, detached=detached, timestamp=False)
        files = {"offre.txt.p7s" if detached else "offre.txt.p7m": cms_file, "offre.txt": BID}
        name = next(iter(files))
        proved = policy(pki, proofs_of_existence=((content_sha256(cms_file), earlier),))
        sig = validate_files(files if detached else {name: cms_file}, proved)[name].signatures[0]
        assert sig.best_signature_time == earlier, detached
        assert [t.time for t in sig.timestamps if t.kind == "deposit"] == [earlier]
        # the content's own deposit still counts; the earlier of the two proves the signature
        both = policy(pki, proofs_of_existence=((content_sha256(cms_file), earlier + timedelta(minutes=1)),
                                                (content_sha256(BID), earlier)))
        sig = validate_files(files if detached else {name: cms_file}, both)[name].signatures[0]
        assert sig.best_signature_time == earlier, detached


def test_p7m_over_a_signed_pdf_is_cades_not_pades(pki: TestPKI) -> None:
    """A .pdf.p7m carries "%PDF-" in its first kilobyte: it is still a CAdES signature over a PDF."""
    inner = sign_pdf(make_pdf("Acte d'engagement"), pki, level="B-T")
    p7m = sign_cms(inner, pki, detached=False)
    assert b"%PDF-" in p7m[:1024]
    report = validate_file("ae.pdf.p7m", p7m, policy(pki))
    assert [(s.format, s.indication) for s in report.signatures] == [(SignatureFormat.CADES, Indication.TOTAL_PASSED)]
    plain = sign_cms(make_pdf("Offre"), pki, detached=False)
    assert validate_file("offre.pdf.p7m", plain, policy(pki)).signatures[0].format is SignatureFormat.CADES


def test_basic_cades_without_timestamp(pki: TestPKI) -> None:
    sig = validate_file("x.p7m", sign_cms(BID, pki, detached=False, timestamp=False), policy(pki)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_B)


def test_revoked_signer_cades(pki: TestPKI) -> None:
    sig = validate_file("x.p7m", sign_cms(BID, pki, label="revoked-before", detached=False), policy(pki)).signatures[0]
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.REVOKED)


def test_untrusted_root_cades(pki: TestPKI) -> None:
    sig = validate_file("x.p7m", sign_cms(BID, pki, label="rogue-signer", detached=False), policy(pki)).signatures[0]
    assert sig.subindication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_asic_s(pki: TestPKI, p7s: bytes) -> None:
    report = validate_file("offre.asics", asic_s("memoire.txt", BID, p7s), policy(pki))
    sig = report.signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED and sig.signed_data == ("memoire.txt",)
    assert sig.file == "offre.asics!/META-INF/signature.p7s"
    assert report.bottom_line and not report.problems


def test_asic_with_an_unsigned_member_is_not_a_signed_container(pki: TestPKI, p7s: bytes) -> None:
    buffer = io.BytesIO(asic_s("memoire.txt", BID, p7s))
    with zipfile.ZipFile(buffer, "a") as z:
        z.writestr("avenant.txt", b"Avenant: prix 1 EUR")  # slipped in beside the signed file
    report = validate_file("offre.asics", buffer.getvalue(), policy(pki))
    assert report.signatures[0].indication is Indication.TOTAL_PASSED  # the signature itself is fine...
    assert not report.bottom_line  # ...but the container is not signed as a whole
    assert report.problems == ("asic.unsigned_member: avenant.txt is in the container but no signature covers it",)


def test_asic_e_with_manifest(pki: TestPKI) -> None:
    members = {"memoire.txt": BID, "prix.csv": b"lot;prix\n1;12000\n"}
    manifest = asic_manifest(members)
    container = asic_e(members, manifest, sign_cms(manifest, pki))
    sig = validate_file("offre.asice", container, policy(pki)).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED
    assert set(sig.signed_data) == {"META-INF/ASiCManifest.xml", "memoire.txt", "prix.csv"}
    # a member changed after signing: the manifest no longer matches
    tampered = asic_e({**members, "prix.csv": b"lot;prix\n1;1\n"}, manifest, sign_cms(manifest, pki))
    bad = validate_file("offre.asice", tampered, policy(pki)).signatures[0]
    assert (bad.indication, bad.subindication) == (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)


def test_files_without_signatures_are_not_reported(pki: TestPKI) -> None:
    assert validate_files({"a.txt": b"hello", "b.pdf": b"%PDF-1.7\n%%EOF"}, policy(pki)) == {}
    report = validate_file("a.txt", b"hello", policy(pki))
    assert not report.bottom_line and report.problems == ("no signature found",)


def test_cades_lt_validates_offline_from_revocation_values(pki: TestPKI) -> None:
    now = datetime.now(UTC)  # revocation data as of now, not in the future of the validation time
    p7m = sign_cms(BID, pki, detached=False)
    assert validate_file("x.p7m", p7m, policy(pki, offline=True)).signatures[0].subindication is (
        SubIndication.TRY_LATER
    )
    lt = add_revocation_values(p7m, [fetch_ocsp(pki, "signer", now)], [fetch_crl(pki, "root", now)])
    sig = validate_file("x.p7m", lt, policy(pki, offline=True)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_LT), (sig.subindication, sig.errors)


def test_revocation_values_short_of_the_chain_are_not_b_lt(pki: TestPKI) -> None:
    """Only the signer's OCSP, not the intermediate CA's CRL: it validates online, but is not B-LT."""
    now = datetime.now(UTC)
    p7m = sign_cms(BID, pki, detached=False)
    partial = add_revocation_values(p7m, [fetch_ocsp(pki, "signer", now)], [])
    sig = validate_file("x.p7m", partial, policy(pki)).signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED
    assert sig.level is Level.B_T
    assert any(w.startswith("signature.validation_data_incomplete") for w in sig.warnings)
