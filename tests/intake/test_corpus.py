"""Third-party files from ../shared/corpus with the outcomes EXPECTED.md gives, in bounded time and memory."""

from __future__ import annotations

import resource
import time

import pikepdf
import pytest

from bidproc.domain import Verdict
from bidproc.intake.inspect import IntakeLimits, inspect
from bidproc.intake.scan import ClamdScanner
from tests.corpus import corpus_dir, corpus_file, corpus_names

EXPECTED_ARCHIVES = {
    "full_overlap.zip": "archive.bomb",
    "crc_mismatch.zip": "archive.corrupt",
    "bad_central_directory.zip": "archive.corrupt",
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_every_corpus_archive_is_listed() -> None:
    assert sorted(p.name for p in corpus_dir("archives").iterdir()) == sorted(EXPECTED_ARCHIVES)


@pytest.mark.parametrize("name", sorted(EXPECTED_ARCHIVES))
def test_corpus_archive(name: str, scanner: ClamdScanner) -> None:
    path = corpus_file("archives", name)
    original = path.read_bytes()
    before, started = _peak_rss_mb(), time.monotonic()
    verdict = inspect(name, lambda: path.open("rb"), scanner)
    assert time.monotonic() - started < 10
    assert _peak_rss_mb() - before < 200  # full_overlap.zip claims 1.09 GB: none of it is inflated
    assert verdict.verdict is Verdict.REJECTED
    assert verdict.code == EXPECTED_ARCHIVES[name]
    assert verdict.size == len(original) and path.read_bytes() == original


@pytest.mark.parametrize("name", corpus_names("damaged-pdf"))  # never reads the disk when the corpus is missing
def test_damaged_pdf_is_repaired_or_rejected(name: str, scanner: ClamdScanner) -> None:
    path = corpus_file("damaged-pdf", name)
    original = path.read_bytes()
    started = time.monotonic()
    verdict = inspect(path.name, lambda: path.open("rb"), scanner, IntakeLimits(parse_timeout_seconds=20))
    assert time.monotonic() - started < 25
    assert path.read_bytes() == original  # the original is never touched
    if verdict.verdict is Verdict.ACCEPTED:
        (rendition,) = verdict.renditions
        assert rendition.source_sha256 == verdict.sha256
        with pikepdf.open(__import__("io").BytesIO(rendition.data)) as reread:  # the rendition is a sound PDF
            assert len(reread.pages) >= 1
        if "pdf.repaired" in verdict.warnings:
            assert "repaired" in rendition.actions and verdict.message  # what was repaired is reported
    else:
        assert verdict.code == "pdf.malformed", verdict


def test_damaged_corpus_outcomes_are_stable(scanner: ClamdScanner) -> None:
    """Pin today's outcomes, so a pikepdf/qpdf upgrade that changes one is noticed."""
    damaged = sorted(corpus_dir("damaged-pdf").iterdir())
    outcomes = {p.name: inspect(p.name, lambda p=p: p.open("rb"), scanner) for p in damaged}
    assert {n: (v.code, "pdf.repaired" in v.warnings) for n, v in outcomes.items()} == {
        "bad14.pdf": (None, True),
        "bad2.pdf": (None, True),
        "bad33.pdf": (None, True),
        "damaged-inline-image.pdf": (None, False),
        "issue-99.pdf": ("pdf.malformed", False),
        "xref-errors.pdf": (None, True),
    }
