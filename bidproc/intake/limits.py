"""Intake policy as data: how big, how deep, how many, which kinds of file a tender accepts.

Every limit is a field with a default that suits ordinary French public procurement bids (PDFs,
office documents, images, ZIP files of those, signature files). A tender can tighten or widen them
with :meth:`IntakeLimits.from_mapping` (e.g. from the tender's settings or a TOML table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from bidproc.errors import BidprocError, Code

KINDS: frozenset[str] = frozenset(
    {
        "pdf",
        "office-ooxml",
        "office-odf",
        "office-legacy",  # .doc/.xls/.ppt (OLE2): the DC1/DC2 forms long circulated in this format
        "image",
        "text",
        "xml",
        "archive",
        "cms-signature",
        "xml-signature",
        "asic",
        "executable",
        "unknown",
    }
)

# Everything a bid ordinarily contains; executables and unidentified content are refused unless a
# tender explicitly allows them (e.g. "unknown" for a tender that asks for CAD files).
DEFAULT_ALLOWED_KINDS: frozenset[str] = KINDS - {"executable", "unknown"}

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class IntakeLimits:
    # one uploaded file (the API has its own, usually equal, upload limit)
    max_file_bytes: int = 4 * GiB
    # everything inflated out of one uploaded file, all nesting levels together
    max_total_uncompressed_bytes: int = 8 * GiB
    # one archive member once inflated
    max_member_bytes: int = 4 * GiB
    # inflated/compressed size of a member; only checked above ratio_floor_bytes, because tiny
    # members (a few bytes of XML) compress "absurdly" well without being bombs
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 * MiB
    max_entries: int = 5000  # per archive, directories included
    max_depth: int = 4  # archive levels inside the uploaded file (a ZIP in a ZIP is depth 2)
    # the parser sandbox (pikepdf/qpdf, bidproc.sandbox.parser): CPU seconds, address space, wall-clock seconds
    parse_timeout_seconds: float = 60.0
    parse_memory_bytes: int = 2 * GiB
    # a PDF larger than this is scanned but gets no reading rendition (warning pdf.not_normalised)
    max_normalise_bytes: int = 512 * MiB
    # archive members up to this size are inflated once into memory instead of re-inflated per pass
    member_buffer_bytes: int = 32 * MiB
    # embedded PDF attachments handed back by the parser child, all together
    max_attachment_bytes: int = 256 * MiB
    # XML and CMS are parsed in full (safe parsers) up to this size to tell signatures from other data
    max_signature_parse_bytes: int = 64 * MiB
    allowed_kinds: frozenset[str] = field(default=DEFAULT_ALLOWED_KINDS)

    def __post_init__(self) -> None:
        unknown = set(self.allowed_kinds) - KINDS
        if unknown:
            raise BidprocError(Code.CONFIG_INVALID, f"unknown file kinds in allowed_kinds: {sorted(unknown)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise BidprocError(Code.CONFIG_INVALID, f"intake limit {f.name} must be positive, got {value}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: IntakeLimits | None = None) -> IntakeLimits:
        """Limits from plain data (a tender's policy, a TOML table); unknown keys are refused."""
        base = base or cls()
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise BidprocError(Code.CONFIG_INVALID, f"unknown intake limits: {sorted(unknown)}")
        changed: dict[str, Any] = {}
        for name, raw in values.items():
            current = getattr(base, name)
            try:
                if isinstance(current, frozenset):
                    changed[name] = frozenset(str(k) for k in raw)
                elif isinstance(raw, bool) or (isinstance(raw, float) and not math.isfinite(raw)):
                    raise ValueError("not a finite number")  # JSON 1e400 parses as infinity
                elif isinstance(current, float):
                    changed[name] = float(raw)
                elif isinstance(raw, float) and not raw.is_integer():
                    raise ValueError("not a whole number")  # int() would silently round it
                else:
                    changed[name] = int(raw)
            except (TypeError, ValueError, OverflowError) as exc:
                raise BidprocError(Code.CONFIG_INVALID, f"intake limit {name}: bad value {raw!r}") from exc
        return replace(base, **changed)
