"""``bidproc verify`` (the real command, in a subprocess) on every signed file of ../shared/corpus gives
what EXPECTED.md says: with no trust anchor, as EXPECTED.md fixes it, and with the file's own signer
trusted at its claimed signing time (see test_corpus.py), where the file carries a signer certificate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import corpus_dir, signer_of_file
from tests.services import ROOT

Sig = dict[str, Any]


def _mods(sig: Sig) -> list[tuple[str, bool]]:
    return [(m["kind"], m["allowed"]) for m in sig["modifications"]]


def _added_page(sig: Sig) -> bool:
    """EXPECTED.md: "TOTAL_FAILED / FORMAT_FAILURE, or at least not PASSED with the added page reported"
    (bidproc does both, so both are asserted)."""
    reported = ("page_added", False) in _mods(sig)
    return reported and (sig["indication"], sig["subindication"]) == ("TOTAL_FAILED", "FORMAT_FAILURE")


# EXPECTED.md, file by file: the one signature's verdict must satisfy the predicate.
EXPECTED: dict[str, Callable[[Sig], bool]] = {
    "pades/pdf-signed-added-page.pdf": _added_page,
    "pades/pdf-signed-corrupted.pdf": lambda s: (
        (s["indication"], s["subindication"]) == ("TOTAL_FAILED", "HASH_FAILURE")
    ),
    "pades/pdf-signed-out-of-byteRange.pdf": lambda s: s["indication"] == "TOTAL_FAILED",
    "pades/pades-signed-filled-form.pdf": lambda s: (
        s["indication"] != "TOTAL_PASSED" and any(kind == "form_filling" for kind, _ in _mods(s))
    ),
    "pades/Signature-P-HU_NET-2.pdf": lambda s: (
        s["indication"] == "TOTAL_FAILED"
        or (
            s["indication"] == "INDETERMINATE"
            and s["subindication"] in {"CRYPTO_CONSTRAINTS_FAILURE", "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"}
        )
    ),
    "xades/XSW-enveloped-fake-content-two-same-id.xml": lambda s: (
        (s["indication"], s["subindication"]) == ("TOTAL_FAILED", "FORMAT_FAILURE")
    ),
    "xades/xsw-original.xml": lambda s: s["format"] == "XAdES",  # "parses; its signature is found"
    "cades/cms-no-sign-cert.p7m": lambda s: (
        (s["indication"], s["subindication"]) == ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")
    ),
}


def test_expectations_cover_expected_md_and_the_folders() -> None:
    """The table above is EXPECTED.md's (pades, xades, cades sections), and every file there is in it."""
    text = (corpus_dir() / "EXPECTED.md").read_text()
    listed = set()
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        folder = section.split("/", 1)[0]
        if folder in {"pades", "xades", "cades"}:
            listed |= {f"{folder}/{name}" for name in re.findall(r"^\| ([^ |]+\.\w+) \|", section, flags=re.M)}
    on_disk = {f"{f}/{p.name}" for f in ("pades", "xades", "cades") for p in corpus_dir(f).iterdir()}
    assert listed == set(EXPECTED) == on_disk


def verify(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bidproc.cli", "verify", str(path), "--offline", "--format", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode in {0, 1}, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bidproc_verify_gives_what_expected_md_says(name: str, tmp_path: Path) -> None:
    path = corpus_dir() / name
    runs = [()]
    signer = signer_of_file(path)
    if signer is not None and signer.signing_time is not None:
        anchor = tmp_path / "signer.der"
        anchor.write_bytes(signer.certificate.dump())
        at = (signer.signing_time + timedelta(minutes=1)).isoformat()
        runs.append(("--trust-anchor", str(anchor), "--at", at))
    for args in runs:
        code, report = verify(path, *args)
        (sig,) = report["signatures"]
        assert EXPECTED[name](sig), (args, sig["indication"], sig["subindication"], _mods(sig), sig["errors"])
        assert code == (0 if report["bottom_line"] else 1)
        if name != "xades/xsw-original.xml":  # the only one EXPECTED.md does not call a failure
            assert not report["bottom_line"] and sig["indication"] != "TOTAL_PASSED", args
