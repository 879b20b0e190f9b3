"""Under an inherited address-space limit (``ulimit -v``, systemd ``LimitAS=``, a container), the parser
sandbox keeps the lower limit: valid files pass, hostile ones are still refused with their own code, and
an environment too small to judge anything answers ``parse.unavailable`` (exit 2), never a rejection.

The real ``bidproc check`` runs in a subprocess whose limits are lowered before it starts, exactly as
a shell's ``ulimit -v`` would (soft and hard).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bidproc.config import ClamdSettings
from tests.corpus import corpus_dir
from tests.intake.builders import pdf, zip_of
from tests.intake.memory_bombs import pdf_bomb
from tests.processes import with_address_space
from tests.services import ROOT

MiB = 1 << 20


def _check(files: list[Path], clamd: ClamdSettings, address_space: int) -> tuple[int, list[dict[str, Any]], str]:
    argv = [sys.executable, "-m", "bidproc.cli", "check", *map(str, files), "--format", "json",
            "--clamd", f"{clamd.host}:{clamd.port}"]
    proc = subprocess.run(with_address_space(address_space, argv), cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else [], proc.stderr


def _write(tmp_path: Path, files: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    return paths


def test_valid_files_pass_under_an_inherited_limit_lower_than_the_sandboxs(
        tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    files = _write(tmp_path, {
        "offre.pdf": pdf(),
        "active.pdf": pdf(javascript=True),
        "annexes.zip": zip_of([("memoire.pdf", pdf()), ("lettre.txt", b"Madame, Monsieur\n")]),
    })
    code, out, err = _check(files, clamd_settings, 1024 * MiB)  # below the parser's own 2 GiB
    assert code == 0, err
    assert [(v["file"], v["verdict"], v["code"]) for v in out] == [
        ("offre.pdf", "accepted", None), ("active.pdf", "accepted", None), ("annexes.zip", "accepted", None)]
    assert all(v["renditions"] for v in out[:2]) and out[2]["members"][0]["renditions"]


def test_hostile_files_keep_their_verdict_under_an_inherited_limit(tmp_path: Path,
                                                                  clamd_settings: ClamdSettings) -> None:
    # Each bomb needs 3 GiB to read: more than the configured 2 GiB and the inherited 1 GiB alike.
    bomb = pdf_bomb("names", twice=True)
    files = _write(tmp_path, {
        "names.pdf": pdf_bomb("names"),
        "annotation.pdf": pdf_bomb("annotation"),
        "twice.pdf": bomb,
        "bomb-inside.zip": zip_of([("offre.pdf", bomb)]),
    })
    files.append(corpus_dir("archives") / "full_overlap.zip")
    code, out, err = _check(files, clamd_settings, 1024 * MiB)
    assert code == 1, err
    assert [(v["file"], v["verdict"], v["code"]) for v in out] == [
        ("names.pdf", "rejected", "parse.crashed"),
        ("annotation.pdf", "rejected", "parse.crashed"),
        ("twice.pdf", "rejected", "parse.crashed"),
        ("bomb-inside.zip", "rejected", "parse.crashed"),
        ("full_overlap.zip", "rejected", "archive.bomb"),
    ]
    for verdict in out[:3]:  # the verdict says the limit was the environment's, for whoever reads it
        assert "lowered by the inherited address-space limit" in verdict["message"]
    assert [(m["file"], m["code"]) for m in out[3]["members"]] == [("offre.pdf", "parse.crashed")]


@pytest.mark.parametrize("address_space", [200 * MiB, 240 * MiB])
def test_too_small_an_environment_is_unavailable_never_a_rejection(
        tmp_path: Path, clamd_settings: ClamdSettings, address_space: int) -> None:
    for files in ({"offre.pdf": pdf()}, {"annexes.zip": zip_of([("memoire.pdf", pdf())])},
                  {"twice.pdf": pdf_bomb("names", twice=True)}):
        code, out, err = _check(_write(tmp_path, files), clamd_settings, address_space)
        assert (code, out) == (2, []), err  # nothing decided, nothing reported as a verdict
        assert "parse.unavailable" in err and "ulimit" in err


_ISOLATED = """
import json, resource, sys
from bidproc.sandbox import SandboxFailure
from bidproc.sandbox.parser import ParserLimits, run_parser
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # after our imports: what the zygote inherits
results = []
for task, data in json.loads(sys.argv[2]):
    try:
        header, _ = run_parser(task, data.encode(), ParserLimits(10, 2 << 30, 30, 1 << 20))
        results.append(["ok", header])
    except SandboxFailure as failure:
        results.append([failure.code.value, failure.message])
print(json.dumps(results))
"""


def _isolated(limit: int, tasks: list[tuple[str, str]]) -> list[list[Any]]:
    proc = subprocess.run([sys.executable, "-c", _ISOLATED, str(limit), json.dumps(tasks)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: list[list[Any]] = json.loads(proc.stdout)
    return result


def test_isolated_child_takes_the_lower_inherited_limit() -> None:
    echo, hog = "bidproc.intake.probes:probe_echo", "bidproc.intake.probes:probe_hog"
    results = _isolated(1024 * MiB, [(echo, "abc"), (hog, str(100 * MiB)), (hog, str(1536 * MiB)), (echo, "d")])
    assert results[0] == ["ok", {"n": 3}] and results[1] == ["ok", {"n": 100 * MiB}] and results[3][0] == "ok"
    # 1.5 GiB fits the configured 2 GiB but not the inherited 1 GiB: the child's limit was the lower one
    assert results[2][0] == "parse.crashed" and "lowered by the inherited address-space limit" in results[2][1]


@pytest.mark.parametrize("limit", [24 * MiB, 40 * MiB, 200 * MiB])
def test_isolated_child_in_too_small_an_environment_is_unavailable(limit: int) -> None:
    # 24 MiB: the zygote cannot even load qpdf; 40 and 200 MiB: below the floor the sandbox needs
    results = _isolated(limit, [("bidproc.intake.probes:probe_echo", "abc")])
    assert results[0][0] == "parse.unavailable", results
