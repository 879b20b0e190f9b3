"""``bidproc verify --format xml|html [--lang] [-o]``: the documents, and exit codes unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from bidproc.cli import main as bidproc
from tests.pki import TestPKI
from tests.reports.schema import vr_schema
from tests.signature.signing import make_pdf, sign_pdf, tamper_incremental


@pytest.fixture(scope="module")
def files(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    good = sign_pdf(make_pdf(), pki, level="B-T")
    out = {"good": d / "offre.pdf", "bad": d / "offre-modifiee.pdf", "anchor": d / "root.der"}
    out["good"].write_bytes(good)
    out["bad"].write_bytes(tamper_incremental(good))
    out["anchor"].write_bytes(pki.root_der)
    return out


@pytest.mark.parametrize(("which", "code"), [("good", 0), ("bad", 1)])
def test_xml_to_file_is_schema_valid_and_exit_code_kept(
    files: dict[str, Path], tmp_path: Path, which: str, code: int
) -> None:
    out = tmp_path / "report.xml"
    args = ["verify", str(files[which]), "--trust-anchor", str(files["anchor"]), "--format", "xml", "-o", str(out)]
    assert bidproc(args) == code
    doc = etree.fromstring(out.read_bytes())
    assert vr_schema().validate(doc), vr_schema().error_log
    main = doc.findtext(".//{http://uri.etsi.org/19102/v1.4.1#}MainIndication")
    assert main.endswith("total-passed" if code == 0 else "total-failed")


@pytest.mark.parametrize(("lang", "words"), [("fr", "Signature valide"), ("en", "Valid signature")])
def test_html_to_stdout_in_each_language(
    files: dict[str, Path], capsysbinary: pytest.CaptureFixture[bytes], lang: str, words: str
) -> None:
    args = ["verify", str(files["good"]), "--trust-anchor", str(files["anchor"]), "--format", "html", "--lang", lang]
    assert bidproc(args) == 0
    doc = lxml_html.fromstring(capsysbinary.readouterr().out)
    assert doc.get("lang") == lang and words in doc.get_element_by_id("verdict").text_content()


def test_html_of_a_failed_signature_exits_one(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = ["verify", str(files["bad"]), "--trust-anchor", str(files["anchor"]), "--format", "html", "-o", str(out)]
    assert bidproc(args) == 1
    assert "le document a été modifié après la signature" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("bad", [["--format", "docx"], ["--format", "html", "--lang", "de"]])
def test_usage_errors_exit_two(files: dict[str, Path], bad: list[str]) -> None:
    assert bidproc(["verify", str(files["good"]), *bad]) == 2
