"""What each PDF revision after a signature did, in words a legal team reads.

Hand-written because pyhanko's difference analysis (``diff_analysis``) gives one verdict for all later
revisions together (a :class:`ModificationLevel` or a ``SuspiciousModification`` message) but does not
list what happened revision by revision. We walk the revisions with pyhanko's historical resolvers and
name each change; whether the signer's DocMDP/FieldMDP permissions allowed it stays pyhanko's call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from bidproc.errors import Warning_
from bidproc.signature.report import Modification

MAX_PAGES_WALKED = 10_000  # a hostile page tree must not make us loop forever
MAX_REVISIONS_WALKED = 500  # nor a file with thousands of incremental updates


def _pages(root: generic.DictionaryObject) -> list[generic.Reference]:
    """Page object references in reading order (iterative walk, cycle-safe)."""
    out: list[generic.Reference] = []
    seen: set[generic.Reference] = set()
    stack: list[generic.PdfObject] = [root.raw_get("/Pages")]
    while stack and len(out) < MAX_PAGES_WALKED:
        item = stack.pop()
        ref = item.reference if isinstance(item, generic.IndirectObject) else None
        if ref is not None:
            if ref in seen:
                continue
            seen.add(ref)
        node = item.get_object()  # type: ignore[no-untyped-call]
        if not isinstance(node, generic.DictionaryObject):
            continue
        if node.get("/Type") == "/Page" and ref is not None:
            out.append(ref)
        kids = node.get("/Kids")
        if isinstance(kids, generic.ArrayObject):
            stack.extend(reversed(list(kids.iterate())))
    return out


def _refs(value: generic.PdfObject | None) -> set[generic.Reference]:
    """Indirect references directly held by a /Contents or /Annots value."""
    if isinstance(value, generic.IndirectObject):
        inner = value.get_object()  # type: ignore[no-untyped-call]
        found = {value.reference}
        if isinstance(inner, generic.ArrayObject):
            found |= _refs(inner)
        return found
    if isinstance(value, generic.ArrayObject):
        return {v.reference for v in value.iterate() if isinstance(v, generic.IndirectObject)}
    return set()


def _raw(page: generic.PdfObject, key: str) -> generic.PdfObject | None:
    obj = page.get_object()  # type: ignore[no-untyped-call]
    return obj.raw_get(key) if isinstance(obj, generic.DictionaryObject) and key in obj else None


def _resource_refs(page: generic.PdfObject) -> dict[str, generic.Reference]:
    """The fonts and XObjects a page draws with, by name (indirect ones only: those a revision can redefine)."""
    out: dict[str, generic.Reference] = {}
    obj = page.get_object()  # type: ignore[no-untyped-call]
    resources = obj.get("/Resources") if isinstance(obj, generic.DictionaryObject) else None
    if not isinstance(resources, generic.DictionaryObject):
        return out
    for group, what in (("/Font", "font"), ("/XObject", "image or form XObject")):
        entries = resources.get(group)
        if isinstance(entries, generic.DictionaryObject):
            for key in entries:
                value = entries.raw_get(key)
                if isinstance(value, generic.IndirectObject):
                    out[f"{what} {key}"] = value.reference
    return out


def _field_refs(root: generic.DictionaryObject) -> set[generic.Reference]:
    try:
        fields = root["/AcroForm"].raw_get("/Fields")
    except (KeyError, AttributeError, TypeError):
        return set()
    return _refs(fields) if fields is not None else set()


def revision_changes(reader: PdfFileReader, revision: int) -> Iterator[tuple[str, str, bool]]:
    """(kind, detail, visible) for each thing revision ``revision`` did relative to ``revision - 1``."""
    before = reader.get_historical_resolver(revision - 1)
    after = reader.get_historical_resolver(revision)
    changed = reader.xrefs.explicit_refs_in_revision(revision)
    old_pages, new_pages = _pages(before.root), _pages(after.root)
    reported: set[generic.Reference] = set()
    old_set, new_set = set(old_pages), set(new_pages)
    for index, ref in enumerate(new_pages):
        if ref not in old_set:
            yield "page_added", f"page {index + 1} (object {ref.idnum})", True
    for index, ref in enumerate(old_pages):
        if ref not in new_set:
            yield "page_removed", f"page {index + 1} of the signed revision (object {ref.idnum})", True
    for index, ref in enumerate(new_pages):
        if ref not in old_set:
            continue
        old_page, new_page = before(ref), after(ref)
        old_contents, new_contents = _refs(_raw(old_page, "/Contents")), _refs(_raw(new_page, "/Contents"))
        if old_contents != new_contents or old_contents & changed:
            yield "content_changed", f"page {index + 1}: content stream replaced or rewritten", True
        elif ref in changed and _raw(old_page, "/Resources") != _raw(new_page, "/Resources"):
            yield "content_changed", f"page {index + 1}: resources (fonts, images) changed", True
        else:  # the shadow "replace" through a font or image object redefined under the same number
            for label, res in _resource_refs(new_page).items():
                if res in changed:
                    yield "content_changed", f"page {index + 1}: {label} (object {res.idnum}) redefined", True
        old_annots, new_annots = _refs(_raw(old_page, "/Annots")), _refs(_raw(new_page, "/Annots"))
        for ref in sorted((new_annots - old_annots) | (old_annots & changed), key=lambda r: r.idnum):
            annot = after(ref)
            kind, field_name = _annotation_kind(annot)
            reported.add(ref)
            what = "added" if ref not in old_annots else "changed"
            if kind == "form_filling":
                yield kind, f"page {index + 1}: field {field_name}", True
            elif kind == "annotation":
                subtype = annot.get("/Subtype", "?") if isinstance(annot, generic.DictionaryObject) else "?"
                yield kind, f"page {index + 1}: {str(subtype).lstrip('/')} annotation {what}", _visible(annot)
            elif _unsigned(annot) and _visible(annot) and _draws(annot):
                # pyhanko accepts a new signature field with any appearance (a field prepared for a co-signer);
                # left unsigned it is no signature, yet its appearance is drawn over the signed page: an overlay
                detail = f"page {index + 1}: unsigned signature field {field_name} with a visible appearance {what}"
                yield "annotation", detail, True
    old_fields = _field_refs(before.root)
    for ref in sorted(
        (_field_refs(after.root) | old_fields) & changed | (_field_refs(after.root) - old_fields), key=lambda r: r.idnum
    ):
        kind, field_name = _annotation_kind(after(ref))
        if ref not in reported and kind != "signature":  # signatures are reported with their names
            yield "form_filling", f"field {field_name}", True
    old_dss = before.root.raw_get("/DSS") if "/DSS" in before.root else None
    if "/DSS" in after.root and (after.root.raw_get("/DSS") != old_dss or _refs(after.root.raw_get("/DSS")) & changed):
        yield "validation_data", "document security store (certificates, OCSP, CRLs) added or updated", False


INVISIBLE_SUBTYPES = {"/Popup", "/Link"}  # no appearance of their own over the page
HIDDEN_FLAGS = 0x2 | 0x20  # ISO 32000 annotation flags Hidden and NoView
PDF_WHITESPACE = b"\x00\t\n\x0c\r "  # ISO 32000-1 §7.2.2


def _visible(annot: generic.PdfObject) -> bool:
    if not isinstance(annot, generic.DictionaryObject):
        return True
    flags = annot.get("/F", 0)
    hidden = isinstance(flags, int) and bool(flags & HIDDEN_FLAGS)
    return not hidden and annot.get("/Subtype") not in INVISIBLE_SUBTYPES


def _resolved(obj: generic.DictionaryObject, key: str) -> generic.PdfObject | None:
    """``obj[key]`` with indirect references followed (``dict.get`` does not), None when absent."""
    try:
        return obj[key] if key in obj else None
    except (KeyError, TypeError, ValueError):  # a dangling reference: as if absent
        return None


def _unsigned(annot: generic.PdfObject) -> bool:
    """A signature field widget whose field (itself, or its parent) has no signature dictionary as value
    (none, null, a number...): nobody signed it, and no report will name it."""
    if not isinstance(annot, generic.DictionaryObject):
        return False
    parent = _resolved(annot, "/Parent")
    values = [_resolved(annot, "/V"), _resolved(parent, "/V") if isinstance(parent, generic.DictionaryObject) else None]
    return not any(isinstance(v, generic.DictionaryObject) for v in values)


def _draws(annot: generic.PdfObject) -> bool:
    """Whether a widget paints anything: a rectangle with an area and an appearance stream with content,
    or border/background colours a viewer paints without one. Unreadable appearance data counts as
    painting (a viewer may well decode what we cannot)."""
    if not isinstance(annot, generic.DictionaryObject):
        return False
    try:
        x1, y1, x2, y2 = (float(v) for v in annot["/Rect"])
    except (KeyError, TypeError, ValueError):
        return False  # no rectangle: nothing is placed on the page
    if not abs(x2 - x1) * abs(y2 - y1):
        return False
    looks = _resolved(annot, "/MK")
    if isinstance(looks, generic.DictionaryObject) and any(_resolved(looks, k) for k in ("/BG", "/BC")):
        return True
    appearance = _resolved(annot, "/AP")
    normal = _resolved(appearance, "/N") if isinstance(appearance, generic.DictionaryObject) else None
    if isinstance(normal, generic.StreamObject):
        states: list[generic.PdfObject | None] = [normal]
    elif isinstance(normal, generic.DictionaryObject):  # one appearance per state (/On, /Off...)
        states = [_resolved(normal, k) for k in normal]
    else:
        states = []
    for stream in states:
        if isinstance(stream, generic.StreamObject):
            try:
                if stream.data.strip(PDF_WHITESPACE):
                    return True
            except Exception:
                return True
    return False


def _annotation_kind(obj: generic.PdfObject) -> tuple[str, str]:
    """("signature" | "form_filling" | "annotation", field name) for an annotation or field object."""
    if not isinstance(obj, generic.DictionaryObject):
        return "annotation", "?"
    parent = _resolved(obj, "/Parent")  # a widget's field: its parent, an indirect object as a rule
    parent = parent if isinstance(parent, generic.DictionaryObject) else None
    field_type = obj.get("/FT") or (parent.get("/FT") if parent is not None else None)
    name = obj.get("/T") or (parent.get("/T") if parent is not None else None) or "?"
    if field_type == "/Sig":
        return "signature", str(name)
    if field_type is not None:
        return "form_filling", str(name)
    return "annotation", str(name)


def modifications_after(
    reader: PdfFileReader,
    signed_revision: int,
    later_signatures: dict[int, str],
    allowed_overall: bool,
    annotations_permitted: bool,
) -> tuple[Modification, ...]:
    """Every change after ``signed_revision``; ``later_signatures`` maps a revision to the signature it added.

    pyhanko judges the later revisions as a whole: when it accepts them (``allowed_overall``) every
    change is allowed; when not, signatures and validation data stay allowed (ISO 32000 always permits
    them) and the rest is not. Stricter than pyhanko on one point, by design: a *visible* annotation
    added after signing changes what a reader sees (the "hide" shadow attack overlays one on signed
    text), so it is allowed only where the signer granted annotations explicitly (DocMDP P=3).
    """
    out: list[Modification] = []
    total = reader.xrefs.total_revisions
    if total - signed_revision > MAX_REVISIONS_WALKED:  # hostile: thousands of incremental updates
        detail = f"{total - 1 - signed_revision} later revisions: too many to list, none accepted"
        return (Modification(signed_revision + 1, "other", False, detail),)
    for revision in range(signed_revision + 1, total):
        if revision in later_signatures:
            out.append(Modification(revision, "signature", True, later_signatures[revision]))
        for kind, detail, visible in revision_changes(reader, revision):
            if kind == "validation_data":
                out.append(Modification(revision, "other", True, detail))
                continue
            allowed = allowed_overall and not (kind == "annotation" and visible and not annotations_permitted)
            out.append(Modification(revision, kind, allowed, detail))
        if revision not in later_signatures and not any(m.revision == revision for m in out):
            out.append(Modification(revision, "other", allowed_overall, "objects rewritten without visible change"))
    if not allowed_overall and all(m.allowed for m in out):
        # pyhanko refused the changes and only signatures were added: a signature is the refused change
        # (e.g. a new visible signature field after a certification, the "sneaky signature" attack)
        out = [replace(m, allowed=False) if m.kind == "signature" else m for m in out]
    return tuple(out)


def name_attacks(
    mods: tuple[Modification, ...], wrapped: bool, certification: bool, certified_first: bool
) -> list[str]:
    """Name the known attack the disallowed changes amount to (Mainka, Mladenov et al., pdf-insecurity.org).

    ``wrapped``: the byte range does not cover exactly one revision; ``certification``: the signature
    is a certification (DocMDP) one; ``certified_first``: no approval signature precedes the certification.
    """
    found: list[str] = []
    if wrapped:
        found.append(Warning_.PDF_SIGNATURE_WRAPPING)
    bad = [m for m in mods if not m.allowed]
    if any(m.kind == "unparsed_data" for m in bad):  # bytes after the last revision a strict parser reads
        found.append(Warning_.PDF_UNPARSED_TAIL)
    if any(m.kind in {"page_added", "page_removed", "content_changed", "other", "unparsed_data"} for m in bad):
        found.append(Warning_.PDF_INCREMENTAL_SAVING_ATTACK)
    if any(m.kind in {"content_changed", "annotation", "form_filling"} for m in bad):
        found.append(Warning_.PDF_SHADOW_ATTACK)
    if any(m.kind == "signature_dictionary" for m in bad):  # /Reason, /M, /ByteRange... redefined after signing
        found.append(Warning_.PDF_SIGNATURE_DICTIONARY_CHANGED)
    if (certification and bad) or not certified_first:
        found.append(Warning_.PDF_CERTIFICATION_ATTACK)
    if bad or found:
        found.insert(0, Warning_.PDF_MODIFIED_AFTER_SIGNING)
    if any(m.kind == "form_filling" and m.allowed for m in mods):
        # Allowed, but what a reader sees in the form fields is not what was signed: say so.
        found.append(Warning_.PDF_FORM_FILLED_AFTER_SIGNING)
    return [str(w) for w in dict.fromkeys(found)]


def signed_revision_text(reader: PdfFileReader, revision: int) -> str:
    """What a signature covers, in words: its revision, that revision's page count, the later ones."""
    pages = len(_pages(reader.get_historical_resolver(revision).root))
    total = reader.xrefs.total_revisions
    later = total - 1 - revision
    return f"revision {revision} ({pages} page{'s' * (pages != 1)}), {later} later revision{'s' * (later != 1)}"
