"""Walk the members of a checked ZIP as streams: each member goes through intake in its own right.

Nothing is ever extracted to disk: a member is either inflated once into memory (small members, up
to ``member_buffer_bytes``) or re-inflated from the archive on each pass (large ones). Members are
visited in the order they sit in the file, so reading a nested archive never rewinds its parent.
The inflating reader stops at the member limit or at what is left of the file's total budget,
whatever the headers claim (zipfile itself also stops at the size the directory announces and then
checks the CRC, which is how a lying size header ends up as ``archive.corrupt``).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from bidproc.domain import Verdict
from bidproc.errors import Code, Warning_
from bidproc.intake.limits import IntakeLimits
from bidproc.intake.scan import Scanner
from bidproc.intake.streams import BoundedReader, LimitExceeded, Opener
from bidproc.intake.verdict import FileVerdict
from bidproc.intake.zipcheck import Listing

# zipfile and the decompressors raise all of these on damaged or hostile data
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError, OSError)


@dataclass
class Run:
    """The state of one ``inspect`` call: shared by every nesting level of one uploaded file."""

    scanner: Scanner
    limits: IntakeLimits
    budget: int  # inflated bytes still allowed for the whole uploaded file


# (run, label, path, opener, depth, size) -> verdict of one member
InspectMember = Callable[[Run, str, str, Opener, int, int], FileVerdict]


def member_failure(label: str, size: int, code: Code, message: str) -> FileVerdict:
    return FileVerdict(
        file=label,
        sha256="",
        size=size,
        media_type="",
        kind="unknown",
        verdict=Verdict.REJECTED,
        code=code.value,
        message=message,
    )


def walk(
    run: Run, path: str, opener: Opener, listing: Listing, depth: int, inspect_member: InspectMember
) -> list[FileVerdict]:
    """Verdicts of the members, in file order; stops after a quarantined member or a limit crossed."""
    verdicts: list[FileVerdict] = []
    with opener() as outer:
        archive = zipfile.ZipFile(outer)
        for info in listing.infos:
            label = info.filename
            member_path = f"{path}/{label}"
            limit = min(run.limits.max_member_bytes, run.budget)
            if info.file_size == 0:
                verdicts.append(_empty_member(archive, info, label))
                if verdicts[-1].verdict is not Verdict.ACCEPTED:
                    break
                continue
            try:
                if info.file_size <= run.limits.member_buffer_bytes:
                    data = _inflate(archive, info, limit, member_path)
                    run.budget -= len(data)
                    member_opener: Opener = _bytes_opener(data)
                    size = len(data)
                else:
                    # zipfile will not yield more than file_size, which list_zip held to the limits
                    run.budget -= info.file_size
                    member_opener = _member_opener(archive, info)
                    size = info.file_size
                verdict = inspect_member(run, label, member_path, member_opener, depth + 1, size)
            except LimitExceeded as exc:
                verdicts.append(member_failure(label, info.file_size, Code.ARCHIVE_BOMB, f"{exc}: inflation stopped"))
                break
            except READ_ERRORS as exc:
                verdicts.append(member_failure(label, info.file_size, Code.ARCHIVE_CORRUPT, f"cannot inflate: {exc}"))
                continue
            verdicts.append(verdict)
            if verdict.verdict is Verdict.QUARANTINED or verdict.code == Code.ARCHIVE_BOMB.value:
                break  # malware: nothing further is read; a bomb: nothing further is worth reading
    return verdicts


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, what: str) -> bytes:
    with archive.open(info) as member:
        reader = BoundedReader(member, limit, what)
        out = io.BytesIO()
        while chunk := reader.read(1 << 20):
            out.write(chunk)
        return out.getvalue()


def _bytes_opener(data: bytes) -> Opener:
    return lambda: io.BytesIO(data)


def _member_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Opener:
    # ZipExtFile is seekable (forward by reading, backward by re-inflating from the start)
    return lambda: cast(BinaryIO, archive.open(info))


def _empty_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> FileVerdict:
    """An empty member is allowed (an empty placeholder file), but its CRC must agree."""
    try:
        with archive.open(info) as member:
            member.read(1)
    except READ_ERRORS as exc:
        return member_failure(label, 0, Code.ARCHIVE_CORRUPT, f"cannot read: {exc}")
    return FileVerdict(
        file=label,
        sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        size=0,
        media_type="application/x-empty",
        kind="unknown",
        verdict=Verdict.ACCEPTED,
        code=None,
        warnings=(Warning_.ARCHIVE_EMPTY_MEMBER.value,),
    )
