"""The PDF report: it renders (pdftoppm), says the verdict, and its seal passes ``bidproc verify``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest

from bidproc.cli import main as bidproc
from bidproc.signature.reports import Subject
from bidproc.signature.reports.pdf import render_pdf
from tests.pki import TestPKI
from tests.signature.signing import make_pdf, sign_pdf

# CI installs poppler-utils (scripts/setup.sh): there a missing pdftoppm fails instead of skipping.
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None and not os.environ.get("CI"), reason="poppler-utils (scripts/setup.sh)"
)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True)
    return " ".join(out.stdout.split())


@needs_poppler
@pytest.mark.parametrize(
    ("sample", "lang", "expected"),
    [
        ("pades-B-LT", "fr", "Signature valide"),
        ("pades-B-LT", "en", "Valid signature"),
        ("pades-modified", "fr", "La signature n'est PAS valide : le document a été modifié après la signature"),
        ("pades-modified", "en", "The signature is NOT valid: the document was changed after it was signed"),
        ("xades-revoked", "en", "The signature is NOT valid: the signer's certificate was revoked at signing time"),
    ],
)
def test_pdf_renders_to_png_and_says_the_verdict(
    subjects: dict[str, Subject], sample: str, lang: str, expected: str, tmp_path: Path
) -> None:
    signer = subjects[sample].report.signatures[0].signer
    assert signer is not None and signer.common_name
    pdf = render_pdf(subjects[sample], lang)  # type: ignore[arg-type]
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        pages = len(doc.pages)
    assert pages >= 1
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(tmp_path / "r.pdf"), str(tmp_path / "p")], check=True)
    assert len(list(tmp_path.glob("p-*.png"))) == pages
    words = pdf_text(pdf, tmp_path)
    assert expected in words.replace("\u00a0", " ")
    assert words.index(expected[:20].replace("\u00a0", " ")) < words.index(signer.common_name)  # verdict first


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service data directory of its own: the local PKI (seal, TSA, CRL) is created there."""
    data = tmp_path / "var"
    monkeypatch.setenv("BIDPROC_SERVICE_DATA_DIR", str(data))
    monkeypatch.setenv("BIDPROC_TIMESTAMPING_TSA_URL", "")
    return data


@pytest.fixture
def sealed_report(pki: TestPKI, service: Path, tmp_path: Path) -> Path:
    signed = tmp_path / "offre.pdf"
    signed.write_bytes(sign_pdf(make_pdf(), pki, level="B-T"))
    anchor = tmp_path / "test-root.der"
    anchor.write_bytes(pki.root_der)
    out = tmp_path / "rapport.pdf"
    code = bidproc(["verify", str(signed), "--trust-anchor", str(anchor), "--format", "pdf", "-o", str(out)])
    assert code == 0 and out.read_bytes().startswith(b"%PDF")
    return out


def verify_json(path: Path, anchor: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = bidproc(["verify", str(path), "--trust-anchor", str(anchor), "--offline", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_sealed_pdf_report_verifies_with_bidproc_itself(
    sealed_report: Path, service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    root = service / "keys" / "local-ca" / "root.pem"
    code, doc = verify_json(sealed_report, root, capsys)
    assert code == 0, doc
    (sig,) = doc["signatures"]  # type: ignore[misc]
    assert (sig["format"], sig["level"], sig["indication"]) == ("PAdES", "B-LT", "TOTAL_PASSED")
    assert sig["signer"]["common_name"] == "bidproc receipt seal"
    assert [t["kind"] for t in sig["timestamps"]] == ["signature"] and sig["timestamps"][0]["valid"]
    assert all(m["allowed"] for m in sig["modifications"])  # only the DSS was added after the seal


def test_sealed_pdf_report_not_trusted_without_the_service_root(
    sealed_report: Path, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    other = tmp_path / "other-root.der"
    other.write_bytes(pki.root_der)
    code, doc = verify_json(sealed_report, other, capsys)
    assert code == 1
    assert doc["signatures"][0]["subindication"] == "NO_CERTIFICATE_CHAIN_FOUND"  # type: ignore[index]


def _append_page(pdf: bytes) -> bytes:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.add_blank_page()
        out = io.BytesIO()
        doc.save(out)  # a full rewrite: the seal no longer covers the file
    return out.getvalue()


def _incremental_text(pdf: bytes) -> bytes:
    from tests.signature.signing import tamper_incremental

    return tamper_incremental(pdf, add_page=False, new_text="Signature valide")


def _flip(pdf: bytes) -> bytes:
    at = pdf.index(b"/Contents") // 2  # a byte inside the sealed range, in the report's own content
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


@pytest.mark.parametrize("tamper", [_append_page, _incremental_text, _flip])
def test_altered_sealed_report_does_not_pass(
    sealed_report: Path, service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: object
) -> None:
    capsys.readouterr()
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(tamper(sealed_report.read_bytes()))  # type: ignore[operator]
    code, doc = verify_json(altered, service / "keys" / "local-ca" / "root.pem", capsys)
    assert code == 1
    assert not doc["bottom_line"]


def test_seal_without_the_local_crl_is_b_t_and_says_so_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local PKI made before root.crl existed: the seal is B-T, and offline it cannot pass (no revocation data)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives import serialization

    from bidproc.signature.reports.pdf_seal import seal_pdf
    from bidproc.timestamps.localca import load_or_create
    from bidproc.timestamps.tsa import LocalTSA

    pki = load_or_create(tmp_path / "ca", datetime.now(UTC))
    assert pki.crl is not None  # a new PKI has it
    old = replace(pki, crl=None)
    sealed = tmp_path / "old.pdf"
    sealed.write_bytes(seal_pdf(make_pdf(), old, LocalTSA(old)))
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    capsys.readouterr()
    code, doc = verify_json(sealed, root, capsys)
    (sig,) = doc["signatures"]  # type: ignore[misc]
    assert code == 1 and (sig["level"], sig["indication"], sig["subindication"]) == (
        "B-T",
        "INDETERMINATE",
        "TRY_LATER",
    )


@needs_poppler
def test_hostile_file_name_is_printed_as_text_in_the_pdf(subjects: dict[str, Subject], tmp_path: Path) -> None:
    from dataclasses import replace

    hostile = "<script>alert(1)</script>offre.pdf"
    subject = subjects["pades-B-T"]
    subject = replace(
        subject, report=replace(subject.report, subject=hostile), document=replace(subject.document, name=hostile)
    )
    words = pdf_text(render_pdf(subject, "en"), tmp_path)
    assert hostile in words
