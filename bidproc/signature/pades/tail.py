"""Bytes of a PDF that no revision pyhanko parsed accounts for, and what a tolerant reader makes of them.

The incremental saving attack hides a new page tree (or a redefined content stream) after the last
revision without a cross-reference section a strict parser would follow, or with a broken one:
pyhanko reads the signed revision and sees no change, while viewers rebuild the cross-reference
table and show the new page. Hand-written (no library says which bytes its parse accounted for):
the end of the last parsed revision is the ``startxref N %%EOF`` that follows the cross-reference
section ending furthest into the file; after it only whitespace may follow.

Also here: bytes between two revisions that belong to neither, object definitions no cross-reference
section lists, later xref entries re-pointed into the signed bytes (hide-and-replace), and the
account of what changed for a signature whose strict validation raised (:func:`explain_failed`).
What a tolerant reader sees is :mod:`.pdf_compare`'s comparison.
"""

from __future__ import annotations

import re
from dataclasses import replace
from io import BytesIO

from pyhanko.pdf_utils.generic import Reference
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.xref import XRefSectionType
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from bidproc.errors import Warning_
from bidproc.signature.pades import compare as pdf_compare
from bidproc.signature.pades.modifications import name_attacks
from bidproc.signature.report import Indication, Modification, SignatureReport, SubIndication

PDF_WHITESPACE = b"\x00\t\n\x0c\r "  # ISO 32000-1 §7.2.2: all a file may carry after its last %%EOF
END_OF_REVISION = re.compile(rb"startxref\s*\d+\s*%%EOF(?:\r\n|\r|\n)?")  # the EOL is the revision's
EOF_MARKER = re.compile(rb"%%EOF(?:\r\n|\r|\n)?")
MAX_PREFIXES_TRIED = 20  # %%EOF markers tried, from the last, when the whole file does not parse
MAX_REPOINTED = 20  # re-pointed cross-reference entries reported
MAX_XREF_ENTRIES_CHECKED = 200_000  # per signature: later xref entries compared with the signed revision


def parsed_end(reader: PdfFileReader, data: bytes) -> int:
    """Offset just after the ``%%EOF`` of the last revision pyhanko parsed."""
    xrefs = reader.xrefs
    ends = [
        info.end_location
        for info in (xrefs.get_xref_container_info(rev) for rev in range(xrefs.total_revisions))
        if info.xref_section_type is not XRefSectionType.HYBRID_STREAM
    ]
    furthest = max(ends, default=0)
    found = END_OF_REVISION.search(data, furthest)
    # no end marker after the last xref section: everything after it is unaccounted for
    return found.end() if found is not None else furthest


def revision_end(reader: PdfFileReader, data: bytes, revision: int) -> int | None:
    """Offset just after the ``%%EOF`` that closes ``revision`` (None if there is none)."""
    info = reader.xrefs.get_xref_container_info(revision)
    found = END_OF_REVISION.search(data, info.end_location)
    return found.end() if found is not None else None


def signature_baseline(reader: PdfFileReader, data: bytes, sig: EmbeddedPdfSignature) -> tuple[int | None, int | None]:
    """(end of the bytes to compare from, revision of the change) for a signature whose coverage is off.

    A signature dictionary redefined after signing (spoofed /Reason, /M, a fake /ByteRange) makes
    pyhanko read the new definition: compare from the revision before that redefinition. Otherwise
    the signed bytes end where the /ByteRange says.
    """
    ref = getattr(sig.sig_field.raw_get("/V"), "reference", None)
    first = last = None
    if isinstance(ref, Reference):
        try:
            first, last = reader.xrefs.get_introducing_revision(ref), reader.xrefs.get_last_change(ref)
        except KeyError:  # not in any cross-reference section: nothing to compare from
            pass
    if first is not None and last is not None and last > first:
        return revision_end(reader, data, last - 1), last
    return signed_end_of(sig.byte_range), None


XREF_KEYWORD = re.compile(rb"xref\s*$")
COMMENT = re.compile(rb"%[^\r\n]*")  # a comment may stand wherever whitespace may
OBJECT_HEADER = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\b")


def _without_objects(gap: bytes) -> bytes:
    """``gap`` minus each ``N G obj ... endobj`` in it (one pass: a header without ``endobj`` ends it)."""
    kept, at = [], 0
    for header in OBJECT_HEADER.finditer(gap):
        if header.start() < at:
            continue  # inside the object just skipped
        close = gap.find(b"endobj", header.end())
        kept.append(gap[at : header.start()])
        at = len(gap) if close < 0 else close + len(b"endobj")
        if close < 0:
            kept.append(gap[header.start() :])  # unterminated: junk, kept
            break
    else:
        kept.append(gap[at:])
    return b"".join(kept)


def hidden_objects(reader: PdfFileReader, data: bytes, after: int, end: int) -> tuple[Modification, ...]:
    """Bytes between revisions later than ``after`` that belong to neither (not whitespace or comments),
    and object definitions in such a revision that its cross-reference section does not list:
    invisible to a strict reader, shown by one that rebuilds the table (later definitions win).

    Found by scanning each later revision's bytes for ``N G obj`` headers at offsets its xref does not
    give (pyhanko's ``standard_xrefs``, internal but pinned with 0.38.*); reported only when a
    rebuilding reader (qpdf) then really shows something else, which it describes.
    """
    xrefs = reader.xrefs
    unlisted: list[tuple[int, int, int]] = []  # (revision, object number, offset)
    junk: list[Modification] = []
    for revision in range(after + 1, xrefs.total_revisions):
        start = revision_end(reader, data, revision - 1)
        info = xrefs.get_xref_container_info(revision)
        if start is None or info.start_location <= start:
            continue  # not laid out one revision after the other (e.g. linearized): nothing to scan
        listed = {offset for _, offset in xrefs.get_xref_data(revision).standard_xrefs.values()}
        unlisted += [
            (revision, int(m.group(1)), m.start())
            for m in OBJECT_HEADER.finditer(data, start, info.start_location)
            if m.start() not in listed
        ]
        first = min((o for o in listed if start <= o < info.start_location), default=info.start_location)
        gap = XREF_KEYWORD.sub(b"", data[start:first])  # pyhanko's table start is after the keyword
        gap = _without_objects(gap)  # unlisted objects: judged below by what a rebuild shows
        if COMMENT.sub(b"", gap).strip(PDF_WHITESPACE):
            junk.append(
                Modification(
                    revision,
                    "unparsed_data",
                    False,
                    f"{first - start} bytes at offset {start}, between revision {revision - 1} and revision "
                    f"{revision}, belong to neither (no cross-reference section lists them)",
                )
            )
    if not unlisted:
        return tuple(junk)
    seen = pdf_compare.rebuilt_changes(data[:end])
    if not seen:
        return tuple(junk)
    revision = unlisted[0][0]
    where = ", ".join(f"object {num} at offset {offset}" for _, num, offset in unlisted[:10])
    head = Modification(
        revision,
        "unparsed_data",
        False,
        f"revision {revision} carries object definitions its cross-reference section does not list ({where}): "
        "a strict reader ignores them, a reader rebuilding the cross-reference table shows them",
    )
    return (
        *junk,
        head,
        *(
            replace(_modification(revision, kind, f"in the unlisted objects: {words}"), allowed=False)
            for kind, words in seen
        ),
    )


def repointed(
    reader: PdfFileReader, data: bytes, signed_revision: int, signed_end: int | None
) -> tuple[Modification, ...]:
    """Cross-reference entries of later revisions that point into the signed bytes at another place
    than the signed revision did: a definition the signed document did not use is swapped in (the
    "hide-and-replace" shadow attack). Rewriting an unchanged entry with its old offset is fine."""
    if signed_end is None:
        return ()
    xrefs = reader.xrefs
    out: list[Modification] = []
    budget = MAX_XREF_ENTRIES_CHECKED
    for revision in range(signed_revision + 1, xrefs.total_revisions):
        for num, (gen, offset) in sorted(xrefs.get_xref_data(revision).standard_xrefs.items()):
            budget -= 1
            if budget < 0 or len(out) >= MAX_REPOINTED:
                return tuple(out)
            if offset >= signed_end:
                continue
            before = xrefs.get_historical_ref(Reference(num, gen), signed_revision)
            if before == offset:
                continue
            header = OBJECT_HEADER.match(data, offset)
            there = f"object {int(header.group(1))} is defined there" if header else "no object header there"
            was = f"the signed revision had no object {num}" if before is None else f"the signed one is at {before}"
            out.append(
                Modification(
                    revision,
                    "other",
                    False,
                    f"revision {revision} points object {num} at offset {offset}, inside the signed bytes ({there}; "
                    f"{was}): a definition the signed document did not use is swapped in",
                )
            )
    return tuple(out)


def readable_prefix(data: bytes) -> tuple[PdfFileReader, int] | None:
    """When pyhanko cannot read the whole file: the longest prefix ending at a ``%%EOF`` that it reads
    and that holds a filled signature field (the signed document; the rest is then an unparsed tail)."""
    markers = [m.end() for m in EOF_MARKER.finditer(data)]
    for end in reversed(markers[-MAX_PREFIXES_TRIED:]):
        if not data[end:].strip(PDF_WHITESPACE):
            continue  # that is the whole file, which did not parse
        try:
            reader = PdfFileReader(BytesIO(data[:end]), strict=False)
            if any(True for _ in enumerate_sig_fields(reader, filled_status=True)):
                return reader, end
        except Exception:  # noqa: S112 - not a readable revision either: try an earlier %%EOF
            continue
    return None


def tail_modifications(data: bytes, end: int, revision: int) -> tuple[Modification, ...]:
    """The unparsed bytes after ``end`` (none if only whitespace), and what a tolerant reader sees in them."""
    rest = data[end:]
    body = rest.lstrip(PDF_WHITESPACE)
    if not body.rstrip(PDF_WHITESPACE):
        return ()
    offset = end + len(rest) - len(body)
    size = len(body.rstrip(PDF_WHITESPACE))
    seen = pdf_compare.changes(data, end, rebuild=True)
    tolerant = (
        f"a tolerant reader (qpdf, rebuilding the cross-reference table) shows {len(seen)} change(s) from them"
        if seen
        else "a tolerant reader (qpdf) shows no change from them"
    )
    head = Modification(
        revision,
        "unparsed_data",
        False,
        f"{size} bytes at offset {offset}, after the last complete revision (which ends at byte {end}), "
        f"do not form a revision this validator can read: {tolerant}",
    )
    return (
        head,
        *(
            replace(_modification(revision, kind, f"in the unparsed bytes: {words}"), allowed=False)
            for kind, words in seen
        ),
    )


def changes_after(data: bytes, signed_end: int | None, revision: int | None = None) -> tuple[Modification, ...]:
    """What a tolerant reader sees changed after the bytes ending at ``signed_end`` (none allowed:
    used where pyhanko's own revision-by-revision account is missing or cannot be trusted).
    ``revision``: the number to report them under; by default the one after the revisions those bytes end."""
    if signed_end is None or not 0 < signed_end <= len(data):
        return ()
    if revision is None:
        revision = len(END_OF_REVISION.findall(data, 0, signed_end))
    return tuple(
        _modification(revision, kind, f"seen by a tolerant reader (qpdf): {words}")
        for kind, words in pdf_compare.changes(data, signed_end)
    )


ALWAYS_PERMITTED = {"signature", "validation_data"}  # ISO 32000-1 §12.8.2.2: any signer may add these


def _modification(revision: int, kind: str, detail: str) -> Modification:
    """A change seen by the tolerant comparison: a later signature or validation data stays allowed
    (as in :func:`modifications.modifications_after`), anything else is not."""
    if kind == "validation_data":
        return Modification(revision, "other", True, detail)
    return Modification(revision, kind, kind in ALWAYS_PERMITTED, detail)


def explain_failed(
    report: SignatureReport,
    data: bytes,
    signed_end: int | None,
    revision: int | None = None,
    known: tuple[Modification, ...] = (),
) -> SignatureReport:
    """A signature whose strict validation raised: say what changed after the bytes it signed
    (``known``: changes found already, e.g. an unparsed tail).

    The verdict stays the exception's (:func:`outcome.indication_for_exception`); as in the gating of
    every other signature, an INDETERMINATE one whose document visibly changed is TOTAL_FAILED.
    """
    said = {m.detail.split(": ", 1)[-1] for m in known}  # the same change seen both ways: said once
    seen = tuple(m for m in changes_after(data, signed_end, revision) if m.detail.split(": ", 1)[-1] not in said)
    mods = known + seen
    if not mods:
        return report
    warnings = name_attacks(mods, False, False, True)
    bad = any(not m.allowed for m in mods)  # then the change made, not a forged signature, is the diagnosis
    kept = tuple(w for w in report.warnings if not bad or w != Warning_.PDF_UNIVERSAL_SIGNATURE_FORGERY.value)
    indication, sub = report.indication, report.subindication
    if indication is Indication.INDETERMINATE and bad:
        indication, sub = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
    return replace(
        report,
        indication=indication,
        subindication=sub,
        modifications=(*report.modifications, *mods),
        warnings=tuple(dict.fromkeys((*kept, *warnings))),
    )


def signed_end_of(byte_range: object) -> int | None:
    """Where the bytes a /ByteRange covers end (None unless it is two ordered ranges from the start)."""
    try:
        values = [int(v) for v in byte_range]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(values) != 4 or values[0] != 0 or not 0 < values[1] < values[2] or values[3] <= 0:
        return None
    return values[2] + values[3]
