"""Generated hostile archives: each gets its code, in bounded time and memory, and nothing is written."""

from __future__ import annotations

import os
import resource
import time
import unicodedata
import zipfile
from pathlib import Path

import pytest

from bidproc.domain import Verdict
from bidproc.intake.inspect import IntakeLimits
from tests.intake.builders import (
    EICAR,
    device_zip,
    nested,
    nested_bomb,
    overlapping_zip,
    patch_member,
    rename_in_place,
    symlink_zip,
    zip_of,
)
from tests.intake.conftest import Check, RecordingScanner


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "member",
    ["../evil.txt", "docs/../../evil.txt", "/tmp/evil.txt", "C:\\Windows\\evil.txt", "c:/evil.txt", "..\\..\\evil.txt"],
)
def test_zip_slip_is_refused_and_nothing_is_written(check: Check, member: str, tmp_path: Path) -> None:
    cwd = Path.cwd()
    before = set(os.listdir(cwd))
    verdict = check("offre.zip", zip_of([("ok.txt", b"fine"), (member, b"pwned")]))
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "archive.path_traversal")
    # nothing is extracted anywhere (/tmp is shared with other processes: only our name is looked for)
    assert set(os.listdir(cwd)) == before
    for where in (Path("/tmp"), cwd, cwd.parent, tmp_path, Path("C:") if Path("C:").exists() else tmp_path):
        assert not (where / "evil.txt").exists()


def test_symlink_entry(check: Check) -> None:
    assert check("offre.zip", symlink_zip()).code == "archive.symlink"


def test_device_entry(check: Check) -> None:
    assert check("offre.zip", device_zip()).code == "archive.device_entry"


def test_nested_bomb_42_style_stops_early(check: Check) -> None:
    data = nested_bomb(levels=3, fanout=4, leaf_bytes=20 << 20)  # 2.8 KB that would inflate to 1.3 GB
    assert len(data) < 10_000
    before, started = _peak_rss_mb(), time.monotonic()
    verdict = check("offre.zip", data)
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "archive.bomb")
    assert time.monotonic() - started < 10 and _peak_rss_mb() - before < 200


def test_nested_bomb_under_every_ratio_is_stopped_by_the_total_budget(check: Check) -> None:
    # leaves compress only 4:1 (below any ratio check); 4*4*4 leaves of 4 MiB = 256 MiB > the 64 MiB budget
    leaf = (os.urandom(1 << 18) + bytes(3 << 18)) * 4
    layer = zip_of([(f"{i}.bin", leaf) for i in range(4)])
    for level in range(2):
        layer = zip_of([(f"l{level}-{i}.zip", layer) for i in range(4)])
    verdict = check("offre.zip", layer, IntakeLimits(max_total_uncompressed_bytes=64 << 20))
    assert verdict.code == "archive.bomb"


def test_overlapping_entries_bomb(check: Check) -> None:
    verdict = check("offre.zip", overlapping_zip(copies=50))  # 2 MiB that claims 100 MiB, all ratios 1:1
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "archive.bomb")
    assert "overlaps" in verdict.message


def test_member_whose_header_lies_about_its_size(check: Check) -> None:
    # 10 MiB that the headers say is 100 bytes: zipfile stops at 100 bytes, then the CRC gives it away
    data = patch_member(zip_of([("big.txt", b"a" * (10 << 20))]), usize=100)
    before = _peak_rss_mb()
    verdict = check("offre.zip", data)
    assert verdict.code == "archive.corrupt" and _peak_rss_mb() - before < 100
    assert verdict.members[0].code == "archive.corrupt"


def test_member_that_inflates_past_the_member_limit(check: Check) -> None:
    data = zip_of([("big.txt", b"a" * (3 << 20))])
    verdict = check("offre.zip", data, IntakeLimits(max_member_bytes=1 << 20, max_ratio=1e9))
    assert verdict.code == "archive.bomb"


def test_ten_thousand_tiny_entries(check: Check) -> None:
    data = zip_of([(f"f{i}.txt", b"x") for i in range(10_000)], method=zipfile.ZIP_STORED)
    started = time.monotonic()
    verdict = check("offre.zip", data)
    assert verdict.code == "archive.too_many_entries" and time.monotonic() - started < 5


def test_many_entries_within_a_raised_limit_are_all_inspected(check: Check) -> None:
    data = zip_of([(f"f{i}.txt", f"line {i}\n".encode()) for i in range(300)])
    verdict = check("offre.zip", data, IntakeLimits(max_entries=300))
    assert verdict.verdict is Verdict.ACCEPTED and len(verdict.members) == 300
    assert {m.kind for m in verdict.members} == {"text"}


def test_nesting_deeper_than_the_limit(check: Check) -> None:
    verdict = check("offre.zip", nested(6, "note.txt", b"hello"), IntakeLimits(max_depth=4))
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "archive.too_deep")


def test_nesting_within_the_limit_is_accepted(check: Check) -> None:
    verdict = check("offre.zip", nested(4, "note.txt", b"hello"), IntakeLimits(max_depth=4))
    assert verdict.verdict is Verdict.ACCEPTED
    assert verdict.members[0].members[0].members[0].members[0].file == "note.txt"


def test_eicar_three_archives_deep(check: Check) -> None:
    data = nested(3, "eicar.txt", EICAR)
    verdict = check("offre.zip", data)
    assert (verdict.verdict, verdict.code) == (Verdict.QUARANTINED, "malware.detected")
    (trace,) = verdict.malware
    assert trace.path == "offre.zip/level1.zip/level2.zip/eicar.txt"
    assert "Eicar" in trace.signature
    assert trace.sha256 == __import__("hashlib").sha256(EICAR).hexdigest()


def test_malware_stops_reading_the_rest(check: Check, recording: RecordingScanner) -> None:
    data = zip_of([("a.txt", b"first"), ("eicar.txt", EICAR), ("z.txt", b"never read")])
    verdict = check("offre.zip", data, using=recording)
    assert verdict.verdict is Verdict.QUARANTINED
    assert [m.file for m in verdict.members] == ["a.txt", "eicar.txt"]
    sha = __import__("hashlib").sha256
    assert sha(b"never read").hexdigest() not in recording.scanned


def test_every_member_and_the_original_are_scanned(check: Check, recording: RecordingScanner) -> None:
    sha = __import__("hashlib").sha256
    inner = zip_of([("c.txt", b"inner member")])
    data = zip_of([("a.txt", b"member a"), ("b.zip", inner)])
    verdict = check("offre.zip", data, using=recording)
    assert verdict.verdict is Verdict.ACCEPTED
    for blob in (b"member a", inner, b"inner member", data):
        assert sha(blob).hexdigest() in recording.scanned


def test_encrypted_member(check: Check) -> None:
    data = patch_member(zip_of([("secret.pdf", b"%PDF-1.4 whatever")]), flag_or=0x1)
    assert check("offre.zip", data).code == "archive.encrypted"


def test_name_with_nul_byte(check: Check) -> None:
    data = rename_in_place(zip_of([("evilXpdf.exe", b"x")]), b"evilXpdf.exe", b"evil\x00pdf.exe")
    verdict = check("offre.zip", data)
    assert verdict.code == "archive.bad_name" and "NUL" in verdict.message


def test_name_with_control_characters(check: Check) -> None:
    assert check("offre.zip", zip_of([("bell\x07.txt", b"x")])).code == "archive.bad_name"
    assert check("offre.zip", zip_of([("rtl\u202etxt.exe", b"x")])).code == "archive.bad_name"  # RTL override


def test_mixed_unicode_normalisation(check: Check) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "mémoire.txt"), unicodedata.normalize("NFD", "mémoire.txt")
    assert nfc != nfd
    # the same name twice in two forms: which one would the buyer open?
    assert check("offre.zip", zip_of([(nfc, b"a"), (nfd, b"b")])).code == "archive.bad_name"
    # one decomposed name alone: accepted, and said
    alone = check("offre.zip", zip_of([(nfd, b"notre m\xc3\xa9moire technique\n")]))
    assert alone.verdict is Verdict.ACCEPTED and "name.normalised" in alone.warnings


def test_empty_member_is_accepted_with_a_warning(check: Check) -> None:
    verdict = check("offre.zip", zip_of([("empty.txt", b""), ("a.txt", b"some text\n")]))
    assert verdict.verdict is Verdict.ACCEPTED and "archive.empty_member" in verdict.members[0].warnings


def test_executable_member_rejects_the_archive(check: Check) -> None:
    verdict = check("offre.zip", zip_of([("a.txt", b"a"), ("setup.exe", b"MZ" + bytes(200))]))
    assert verdict.code == "type.not_allowed"
    assert [m.code for m in verdict.members] == [None, "type.not_allowed"]


def test_asic_container_is_unpacked(check: Check) -> None:
    data = zip_of(
        [
            ("mimetype", b"application/vnd.etsi.asic-e+zip"),
            ("offre.txt", b"notre offre"),
            ("META-INF/signatures001.xml", b"<x/>"),
        ],
        method=zipfile.ZIP_STORED,
    )
    verdict = check("offre.asice", data)
    assert verdict.kind == "asic" and verdict.verdict is Verdict.ACCEPTED and len(verdict.members) == 3


def test_end_record_claiming_a_huge_directory(check: Check) -> None:
    data = bytearray(zip_of([("a.txt", b"some text\n")]))
    at = data.rindex(b"PK\x05\x06")
    data[at + 12 : at + 16] = (0xFFFFFFF0).to_bytes(4, "little")  # central directory size: 4 GB
    before = _peak_rss_mb()
    verdict = check("offre.zip", bytes(data))
    assert verdict.code == "archive.too_many_entries" and _peak_rss_mb() - before < 50
