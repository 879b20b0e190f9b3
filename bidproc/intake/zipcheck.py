"""Structural checks of a ZIP before anything is inflated: the central directory is the whole plan.

:mod:`zipfile` reads the central directory for us; what it does not check is written here by hand:
- the entry count from the end-of-central-directory record, before zipfile loads the directory;
- overlapping entries (David Fifield's non-recursive bombs, "full" and "quoted" overlap): every
  entry's local header plus data must end before the next entry starts and before the directory;
- names: absolute, ``..``, drive letters, NUL and control characters, mixed Unicode normalisation;
- symlinks and device entries (Unix mode bits in the external attributes), encrypted entries;
- claimed sizes and compression ratios against the limits (the inflating reader enforces the same
  limits again on the real bytes, because headers lie).
"""

from __future__ import annotations

import stat
import struct
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO

from bidproc.errors import BidprocError, Code
from bidproc.intake.limits import IntakeLimits

_EOCD = struct.Struct("<4s4H2LH")  # signature, disk, cd disk, entries here, entries, cd size, cd offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_ENCRYPTED = 0x1
_STRONG_ENCRYPTION = 0x40
_DATA_DESCRIPTOR = 0x8
SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})


class ArchiveProblem(BidprocError):
    """A :class:`BidprocError` of its own kind, so callers can tell it apart (and still catch it as one)."""


@dataclass(frozen=True)
class Listing:
    infos: tuple[zipfile.ZipInfo, ...]  # file entries (no directories), in the order they sit in the file
    names: tuple[str, ...]  # every entry name, directories included, as listed
    claimed_bytes: int
    warnings: tuple[str, ...]
    mimetype: bytes = b""  # content of a first, small "mimetype" entry (ODF and ASiC announce themselves so)


def entry_count(stream: IO[bytes], max_entries: int) -> int:
    """Entries the end-of-central-directory record announces (ZIP64 aware); hand-parsed."""
    end = stream.seek(0, 2)
    stream.seek(max(0, end - (_EOCD.size + 0xFFFF)))
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise ArchiveProblem(Code.ARCHIVE_CORRUPT, "no end of central directory record")
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    # zipfile reads the whole directory into memory: its size must fit the entry limit (4 KiB an
    # entry is generous: 46 bytes plus name, extra field and comment)
    if cd_size > max_entries * 4096:
        raise ArchiveProblem(Code.ARCHIVE_TOO_MANY_ENTRIES, f"a central directory of {cd_size} bytes")
    if entries == 0xFFFF and at >= _ZIP64_LOCATOR.size:
        sig, _, eocd64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, at - _ZIP64_LOCATOR.size)
        if sig == b"PK\x06\x07" and eocd64_offset < end:
            stream.seek(eocd64_offset)
            raw = stream.read(_ZIP64_EOCD.size)
            if len(raw) == _ZIP64_EOCD.size and raw[:4] == b"PK\x06\x06":
                entries = _ZIP64_EOCD.unpack(raw)[7]
    return int(entries)


def check_name(raw: str) -> tuple[Code | None, str]:
    """A problem code for a member name, or (None, "") when it is acceptable."""
    if "\x00" in raw:
        return Code.ARCHIVE_BAD_NAME, f"member name contains a NUL byte: {raw!r}"
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs"} for c in raw):
        return Code.ARCHIVE_BAD_NAME, f"member name contains control characters: {raw!r}"
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        return Code.ARCHIVE_PATH_TRAVERSAL, f"absolute member path: {raw!r}"
    if any(part == ".." for part in name.split("/")):
        return Code.ARCHIVE_PATH_TRAVERSAL, f"member path climbs out of the archive: {raw!r}"
    return None, ""


def _check_overlap(stream: IO[bytes], infos: list[zipfile.ZipInfo], cd_offset: int) -> None:
    """Each entry must end before the next one (or the directory) begins: no byte is shared."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for index, info in enumerate(ordered):
        stream.seek(info.header_offset)
        raw = stream.read(_LOCAL_HEADER.size)
        if len(raw) < _LOCAL_HEADER.size or raw[:4] != b"PK\x03\x04":
            raise ArchiveProblem(Code.ARCHIVE_CORRUPT, f"no local header where the directory puts {info.filename!r}")
        fields = _LOCAL_HEADER.unpack(raw)
        name_len, extra_len = fields[9], fields[10]
        end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        limit = ordered[index + 1].header_offset if index + 1 < len(ordered) else cd_offset
        if end > limit:
            raise ArchiveProblem(
                Code.ARCHIVE_BOMB, f"entry {info.filename!r} overlaps the next entry (a non-recursive zip bomb)"
            )


def list_zip(stream: IO[bytes], limits: IntakeLimits, budget: int) -> Listing:
    """Check the structure and the claims; raise :class:`ArchiveProblem` on the first problem.

    ``budget`` is what is left of ``max_total_uncompressed_bytes`` for the whole uploaded file.
    """
    count = entry_count(stream, limits.max_entries)
    if count > limits.max_entries:
        raise ArchiveProblem(Code.ARCHIVE_TOO_MANY_ENTRIES, f"{count} entries, the limit is {limits.max_entries}")
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
        infos = archive.infolist()
        cd_offset = int(getattr(archive, "start_dir", stream.seek(0, 2)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error) as exc:
        raise ArchiveProblem(Code.ARCHIVE_CORRUPT, f"unreadable central directory: {exc}") from exc
    if len(infos) > limits.max_entries:
        raise ArchiveProblem(Code.ARCHIVE_TOO_MANY_ENTRIES, f"{len(infos)} entries, the limit is {limits.max_entries}")
    warnings: set[str] = set()
    seen: dict[str, str] = {}
    files: list[zipfile.ZipInfo] = []
    claimed = 0
    for info in infos:
        code, why = check_name(info.orig_filename)
        if code is not None:
            raise ArchiveProblem(code, why)
        folded = unicodedata.normalize("NFC", info.filename).casefold()
        if folded in seen and seen[folded] != info.filename:
            raise ArchiveProblem(
                Code.ARCHIVE_BAD_NAME, f"member names {seen[folded]!r} and {info.filename!r} differ only in form"
            )
        seen[folded] = info.filename
        if unicodedata.normalize("NFC", info.filename) != info.filename:
            warnings.add("name.normalised")
        mode = info.external_attr >> 16
        if info.create_system == 3 and mode:  # Unix: the high half of external_attr is st_mode
            if stat.S_ISLNK(mode):
                raise ArchiveProblem(Code.ARCHIVE_SYMLINK, f"symbolic link entry {info.filename!r}")
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise ArchiveProblem(Code.ARCHIVE_DEVICE_ENTRY, f"device entry {info.filename!r}")
        if info.is_dir():
            continue
        if info.flag_bits & (_ENCRYPTED | _STRONG_ENCRYPTION):
            raise ArchiveProblem(Code.ARCHIVE_ENCRYPTED, f"encrypted member {info.filename!r} cannot be scanned")
        if info.compress_type not in SUPPORTED_METHODS:
            raise ArchiveProblem(
                Code.ARCHIVE_UNSUPPORTED, f"member {info.filename!r} uses compression method {info.compress_type}"
            )
        if info.file_size > limits.max_member_bytes:
            raise ArchiveProblem(Code.ARCHIVE_BOMB, f"member {info.filename!r} claims {info.file_size} bytes")
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(1, info.compress_size):
            ratio = info.file_size / max(1, info.compress_size)
            raise ArchiveProblem(Code.ARCHIVE_BOMB, f"member {info.filename!r} claims a ratio of {ratio:.0f}")
        claimed += info.file_size
        files.append(info)
    if claimed > budget:
        raise ArchiveProblem(Code.ARCHIVE_BOMB, f"members claim {claimed} bytes in all, {budget} are allowed")
    _check_overlap(stream, [i for i in infos], cd_offset)
    files.sort(key=lambda i: i.header_offset)  # forward-only reads: nested members never rewind
    mimetype = b""
    if files and files[0].filename == "mimetype" and files[0].file_size <= 256:
        try:
            with archive.open(files[0]) as member:
                mimetype = member.read(256)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
            raise ArchiveProblem(Code.ARCHIVE_CORRUPT, f"unreadable mimetype entry: {exc}") from exc
    return Listing(tuple(files), tuple(i.filename for i in infos), claimed, tuple(sorted(warnings)), mimetype)
