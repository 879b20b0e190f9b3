"""Large originals and members are streamed: memory does not grow with file size."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import zipfile

from bidproc.domain import Verdict
from bidproc.intake.inspect import IntakeLimits, inspect
from bidproc.intake.scan import ClamdScanner
from tests.intake.conftest import Check

LINE = b"Offre technique et financiere, lot 3, ligne de bordereau de prix.\n"


class GeneratedText(io.RawIOBase):
    """``size`` bytes of repeated text, produced on demand and seekable: a big original never in memory."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        start = self.pos % len(LINE)
        chunk = (LINE * (n // len(LINE) + 2))[start : start + n]
        buffer[:n] = chunk
        self.pos += n
        return n


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_large_original_is_streamed(scanner: ClamdScanner) -> None:
    size = 300 << 20
    expected = hashlib.sha256()
    stream = GeneratedText(size)
    while chunk := stream.read(8 << 20):
        expected.update(chunk)
    before = _peak_rss_mb()
    verdict = inspect("bordereau.txt", lambda: io.BufferedReader(GeneratedText(size), 1 << 20), scanner)  # type: ignore[arg-type]
    assert (verdict.verdict, verdict.size, verdict.sha256) == (Verdict.ACCEPTED, size, expected.hexdigest())
    assert _peak_rss_mb() - before < 64  # a 300 MB file, a few MB of buffers


def test_large_member_is_streamed_not_buffered(check: Check) -> None:
    blob = os.urandom(6 << 20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("photo.raw", blob)
        z.writestr("note.txt", b"small note\n")
    limits = IntakeLimits(member_buffer_bytes=1 << 20, allowed_kinds=IntakeLimits().allowed_kinds | {"unknown"})
    verdict = check("offre.zip", out.getvalue(), limits)
    assert verdict.verdict is Verdict.ACCEPTED
    assert verdict.members[0].sha256 == hashlib.sha256(blob).hexdigest() and verdict.members[0].size == len(blob)
