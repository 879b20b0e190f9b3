"""Hostile and ordinary files for intake tests, built in memory (never written to disk)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable

import pikepdf

# The EICAR test file, assembled so this source file is not itself flagged by a scanner.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def zip_of(entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def unix_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def symlink_zip() -> bytes:
    return zip_of([("ok.txt", b"hello"), (unix_entry("link", stat.S_IFLNK | 0o777), b"/etc/passwd")])


def device_zip() -> bytes:
    return zip_of([(unix_entry("dev", stat.S_IFCHR | 0o600), b"")])


def rename_in_place(data: bytes, old: bytes, new: bytes) -> bytes:
    """Patch a member name in both headers (same length), e.g. to put a NUL in it, which zipfile won't."""
    assert len(old) == len(new)
    return data.replace(old, new)


def patch_member(data: bytes, *, flag_or: int = 0, usize: int | None = None) -> bytes:
    """Set flag bits / the uncompressed size in the first local header and central directory record."""
    buf = bytearray(data)
    local = buf.index(b"PK\x03\x04")
    central = buf.index(b"PK\x01\x02")
    for at, flag_at, usize_at in ((local, 6, 22), (central, 8, 24)):
        (flags,) = struct.unpack_from("<H", buf, at + flag_at)
        struct.pack_into("<H", buf, at + flag_at, flags | flag_or)
        if usize is not None:
            struct.pack_into("<L", buf, at + usize_at, usize)
    return bytes(buf)


def overlapping_zip(copies: int = 50, kernel: bytes = b"") -> bytes:
    """A "full overlap" bomb (after Fifield): many directory entries all pointing at one local file.

    The kernel is stored and incompressible, so no ratio check can catch it: only the overlap check.
    """
    kernel = kernel or bytes(range(256)) * 8192  # 2 MiB, ratio 1
    crc = zlib.crc32(kernel)
    name = b"k"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(kernel), len(kernel), len(name), 0)
    body = local + name + kernel
    central = b""
    for i in range(copies):
        n = f"k{i:04d}".encode()
        central += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                0,
                0,
                0,
                crc,
                len(kernel),
                len(kernel),
                len(n),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + n
        )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(central), len(body), 0)
    return body + central + end


def nested_bomb(levels: int = 3, fanout: int = 4, leaf_bytes: int = 20 << 20) -> bytes:
    """42.zip in miniature: each level holds ``fanout`` copies of the level below; leaves are zeros."""
    layer = zip_of([(f"{i}.bin", bytes(leaf_bytes)) for i in range(fanout)])
    for level in range(levels):
        layer = zip_of([(f"lib{level}-{i}.zip", layer) for i in range(fanout)])
    return layer


def nested(depth: int, leaf_name: str, leaf: bytes) -> bytes:
    """``depth`` archives, one inside the other, the innermost holding ``leaf_name``."""
    data = zip_of([(leaf_name, leaf)])
    for level in range(depth - 1, 0, -1):
        data = zip_of([(f"level{level}.zip", data)])
    return data


def pdf(*, javascript: bool = False, attachment: tuple[str, bytes] | None = None, password: str = "") -> bytes:
    doc = pikepdf.new()
    doc.add_blank_page()
    if javascript:
        action = doc.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)")))
        doc.Root.OpenAction = action
        names = pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("x"), action]))
        doc.Root.Names = pikepdf.Dictionary(JavaScript=names)
        doc.pages[0].obj.AA = pikepdf.Dictionary(O=action)
    if attachment is not None:
        doc.attachments[attachment[0]] = pikepdf.AttachedFileSpec(doc, attachment[1], filename=attachment[0])
    out = io.BytesIO()
    encryption = pikepdf.Encryption(user=password, owner=password + "-owner") if password else False
    doc.save(out, encryption=encryption)
    return out.getvalue()


def slow_pdf(elements: int = 1_000_000) -> bytes:
    """A 2 MB PDF whose catalogue holds an array of a million numbers: seconds of parsing for one page."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Junk 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> >>",
        b"[" + b"0 " * elements + b"]",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
