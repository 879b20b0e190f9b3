"""``bidproc verify``: the JSON contract of DESIGN.md and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asn1crypto import pem

from bidproc.cli import main as bidproc
from tests.pki import TestPKI
from tests.signature.signing import sign_cms

CONTRACT = [
    "format",
    "level",
    "indication",
    "subindication",
    "signer",
    "qualification",
    "signing_time",
    "best_signature_time",
    "timestamps",
    "modifications",
    "warnings",
    "french_rule",
]


@pytest.fixture
def anchor(pki: TestPKI, tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_bytes(pem.armor("CERTIFICATE", pki.root_der))
    return path


def test_json_contract_and_exit_zero(
    signed: dict[str, bytes], anchor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "offre.pdf"
    pdf.write_bytes(signed["B-LT"])
    assert bidproc(["verify", str(pdf), "--trust-anchor", str(anchor), "--offline", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sig = doc["signatures"][0]
    assert list(sig)[: len(CONTRACT)] == CONTRACT
    assert (sig["format"], sig["level"], sig["indication"], sig["subindication"]) == (
        "PAdES",
        "B-LT",
        "TOTAL_PASSED",
        None,
    )
    assert sig["signer"]["common_name"] == "Alice Martin" and sig["qualification"] == "NA"
    assert sig["timestamps"][0]["kind"] == "signature"
    assert sig["french_rule"]["certificate_category"] == "not_checked"


def test_failure_exit_one_text_and_output_file(signed: dict[str, bytes], anchor: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "offre.pdf"
    pdf.write_bytes(signed["revoked-before"])
    out = tmp_path / "report.txt"
    assert bidproc(["verify", str(pdf), "--trust-anchor", str(anchor), "--format", "text", "-o", str(out)]) == 1
    text = out.read_text()
    assert "TOTAL_FAILED/REVOKED" in text and "certificate_valid_at_signing_time" in text


def test_detached_data_and_at(pki: TestPKI, anchor: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "memoire.txt"
    data.write_bytes(b"memoire")
    sig = tmp_path / "memoire.txt.p7s"
    sig.write_bytes(sign_cms(b"memoire", pki))
    argv = ["verify", str(sig), "--detached-data", str(data), "--trust-anchor", str(anchor)]
    assert bidproc(argv) == 0
    assert json.loads(capsys.readouterr().out)["signatures"][0]["signed_data"] == ["memoire.txt"]
    assert bidproc([*argv, "--at", (pki.t0.replace(year=pki.t0.year + 5)).isoformat()]) == 1  # signer expired by then


def test_no_signature_is_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = tmp_path / "a.txt"
    plain.write_text("hello")
    assert bidproc(["verify", str(plain), "--offline"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == ["no signature found"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--format", "docx", "x"],
        ["missing.pdf"],
        ["x", "--at", "yesterday"],
        ["x", "--trust-anchor", "/nonexistent.pem"],
    ],
)
def test_usage_errors_exit_two(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").write_bytes(b"%PDF-1.7")
    assert bidproc(["verify", *argv]) == 2
