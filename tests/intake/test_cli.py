"""``bidproc check``: the DESIGN.md contract and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bidproc.cli import main as bidproc_main
from bidproc.config import ClamdSettings
from bidproc.intake.cli import main
from tests.corpus import corpus_dir
from tests.intake.builders import EICAR, pdf, zip_of
from tests.services import free_port

FIELDS = {"file", "sha256", "size", "media_type", "kind", "verdict", "code", "warnings", "members", "renditions"}


@pytest.fixture()
def clamd(clamd_settings: ClamdSettings) -> str:
    return f"{clamd_settings.host}:{clamd_settings.port}"


def test_all_accepted_exit_0(tmp_path: Path, clamd: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "offre.pdf").write_bytes(pdf(javascript=True))
    (tmp_path / "annexes.zip").write_bytes(zip_of([("a.txt", b"annexe\n"), ("b.pdf", pdf())]))
    code = main([str(tmp_path / "offre.pdf"), str(tmp_path / "annexes.zip"), "--format", "json", "--clamd", clamd])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [v["file"] for v in out] == ["offre.pdf", "annexes.zip"]
    for verdict in out:
        assert FIELDS <= set(verdict)
        assert verdict["verdict"] == "accepted"
    assert set(out[0]["renditions"][0]) == {"name", "media_type", "sha256", "source_sha256", "actions"}
    assert [m["file"] for m in out[1]["members"]] == ["a.txt", "b.pdf"]
    assert FIELDS <= set(out[1]["members"][1]) and out[1]["members"][1]["renditions"]


def test_rejected_or_quarantined_exit_1(tmp_path: Path, clamd: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "eicar.txt").write_bytes(EICAR)
    overlap = corpus_dir("archives") / "full_overlap.zip"
    assert main([str(tmp_path / "eicar.txt"), str(overlap), "--format", "json", "--clamd", clamd]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [(v["verdict"], v["code"]) for v in out] == [
        ("quarantined", "malware.detected"),
        ("rejected", "archive.bomb"),
    ]


def test_text_format(tmp_path: Path, clamd: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.zip").write_bytes(zip_of([("x.txt", b"text\n")]))
    assert main([str(tmp_path / "a.zip"), "--clamd", clamd]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a.zip: accepted") and "  x.txt: accepted" in out


def test_clamd_unreachable_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_bytes(b"text\n")
    assert main([str(tmp_path / "a.txt"), "--clamd", f"127.0.0.1:{free_port()}"]) == 2
    assert "scan.unavailable" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], clamd: str) -> None:
    assert main([]) == 2
    assert main([str(tmp_path / "missing.pdf"), "--clamd", clamd]) == 2
    assert main([str(tmp_path), "--clamd", "nonsense"]) == 2


def test_dispatched_from_bidproc_command(tmp_path: Path, clamd: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_bytes(b"text\n")
    assert bidproc_main(["check", str(tmp_path / "a.txt"), "--clamd", clamd, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["kind"] == "text"


def test_clamd_address_from_config_file(tmp_path: Path, clamd_settings: ClamdSettings, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("BIDPROC_CLAMD_HOST", "BIDPROC_CLAMD_PORT", "BIDPROC_CLAMD_SOCKET"):
        monkeypatch.delenv(name, raising=False)  # the environment would override the file
    (tmp_path / "a.txt").write_bytes(b"text\n")
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(f'[clamd]\nhost = "127.0.0.1"\nport = {clamd_settings.port}\n')
    bad.write_text(f'[clamd]\nhost = "127.0.0.1"\nport = {free_port()}\n')
    assert main([str(tmp_path / "a.txt"), "--config", str(good)]) == 0
    assert main([str(tmp_path / "a.txt"), "--config", str(bad)]) == 2
    assert "scan.unavailable" in capsys.readouterr().err
