"""Finding what carries or is a signature among a bid's files (by parsing, never by extension alone).

python-magic cannot tell CMS or XAdES from other data (DESIGN.md), so: PDFs by their header and a
signature field, CMS by parsing a SignedData, XML by a ds:Signature element name in the bytes, and
ASiC-S/ASiC-E by a zip whose META-INF holds signatures. ASiC members are read with hard bounds: the
intake stage owns archive safety, but this module must not be the weak spot if called on its own.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from asn1crypto import cms

from bidproc.signature.cades.validator import load_signed_data

ASIC_MAX_MEMBERS = 1000
ASIC_MAX_TOTAL_BYTES = 512 * 1024 * 1024
XMLDSIG_NS = b"http://www.w3.org/2000/09/xmldsig#"


class Kind(StrEnum):
    PDF = "pdf"
    CMS = "cms"
    XML = "xml"
    ASIC = "asic"
    OTHER = "other"


@dataclass(frozen=True)
class Found:
    kind: Kind
    signed_data: cms.SignedData | None = None


def classify(name: str, data: bytes) -> Found:
    head = data[:1024]
    # Containers first: an enveloping CAdES over a PDF (.pdf.p7m, the usual French bid format) or an
    # ASiC whose first member is a stored PDF both carry "%PDF-" in their first kilobyte.
    if data[:4] == b"PK\x03\x04":
        return Found(Kind.ASIC) if _is_asic(data) else Found(Kind.OTHER)
    sd = load_signed_data(data)
    if sd is not None:
        return Found(Kind.CMS, sd)
    if b"%PDF-" in head:
        # cheap pre-check: a PDF without a signature dictionary has nothing to validate
        return Found(Kind.PDF) if (b"/ByteRange" in data or b"/Sig" in data) else Found(Kind.OTHER)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<") and XMLDSIG_NS in data:
        return Found(Kind.XML)
    return Found(Kind.OTHER)


def _is_asic(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(names) > ASIC_MAX_MEMBERS:
                return False
            return any(
                n.startswith("META-INF/") and ("signature" in n.lower() or n.lower().endswith(".p7s")) for n in names
            )
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _unread_because(info: zipfile.ZipInfo) -> str | None:
    """Why :func:`asic_members` does not read an entry (None: it does)."""
    if info.flag_bits & 0x1:
        return "encrypted"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return "a symbolic link"
    if ".." in info.filename.split("/") or info.filename.startswith("/"):
        return "a name outside the container"
    return None


def asic_members(data: bytes) -> dict[str, bytes]:
    """The members of an ASiC container (bounded; directories, links and encrypted entries skipped:
    :func:`asic_unread` names what is skipped or ambiguous)."""
    out: dict[str, bytes] = {}
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist()[:ASIC_MAX_MEMBERS]:
            if info.is_dir() or _unread_because(info) is not None:
                continue
            with zf.open(info) as member:
                chunk = member.read(ASIC_MAX_TOTAL_BYTES - total + 1)
            total += len(chunk)
            if total > ASIC_MAX_TOTAL_BYTES:
                raise ValueError("ASiC container expands beyond the size bound")
            out[info.filename] = chunk
    return out


def asic_unread(data: bytes) -> list[tuple[str, str]]:
    """(entry name, why) for each entry of the container that is not exactly one member read by
    :func:`asic_members`: skipped (no signature can cover what is not read, yet a tool extracting the
    container shows it), or a name given to several entries (the last is read, a streaming extractor
    shows the first: which one the signature covers depends on the reader)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist()[:ASIC_MAX_MEMBERS]:
            why = None if info.is_dir() else _unread_because(info)
            if why is not None:
                out.append((info.filename, f"not read: {why}"))
            elif info.filename in seen and not info.is_dir():
                out.append((info.filename, "several entries have this name"))
            seen.add(info.filename)
    return out


def asic_signed_files(members: Mapping[str, bytes]) -> dict[str, bytes]:
    """What an ASiC container's signatures may sign: every member outside META-INF, plus manifests."""
    return {n: d for n, d in members.items() if not n.startswith("META-INF/") or "manifest" in n.lower()}
