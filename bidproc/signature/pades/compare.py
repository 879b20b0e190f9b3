"""What a tolerant PDF reader sees changed after a signature, object by object, in plain words.

Used where pyhanko's strict, revision-aware reading cannot answer: bytes after the last revision it
parses (the incremental saving attack), a later revision it refuses to read (``Expected object ID ...
does not match actual``: the shadow attacks), a signature dictionary redefined after signing. qpdf
(through pikepdf) opens the signed bytes ``data[:end]`` and the whole file the way tolerant viewers
do (rebuilding a broken cross-reference table, later object definitions winning), and we compare the
two object by object. Hand-written: neither pikepdf nor pyhanko compares two versions of a PDF.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pikepdf

log = logging.getLogger(__name__)
MAX_OBJECTS = 50_000  # a hostile object count must not make the comparison unbounded
MAX_REPORTED = 40  # entries per comparison; the rest are counted
FORCE_REBUILD = b"\nstartxref\n0\n%%EOF\n"  # a startxref that cannot be right: qpdf rebuilds the xref by scanning

ObjGen = tuple[int, int]


@contextmanager
def opened(data: bytes, rebuild: bool = False) -> Iterator[pikepdf.Pdf | None]:
    """``data`` as qpdf reads it (None if even qpdf cannot); ``rebuild`` forces the scanning reader."""
    try:
        pdf = pikepdf.open(io.BytesIO(data + FORCE_REBUILD if rebuild else data), attempt_recovery=True)
    except Exception:  # not readable even tolerantly: nothing to compare
        yield None
        return
    try:
        yield pdf
    finally:
        pdf.close()


def _fingerprint(obj: pikepdf.Object) -> bytes:
    """A digest of one object's definition (dictionary text, and raw data for a stream)."""
    digest = hashlib.sha256()
    try:
        if isinstance(obj, pikepdf.Stream):
            digest.update(bytes(obj.stream_dict.unparse(resolved=True)) + b"\x00stream\x00")
            digest.update(obj.read_raw_bytes())
        else:
            digest.update(bytes(obj.unparse(resolved=True)))
    except Exception:  # a definition qpdf cannot even print: it still differs from a readable one
        return b"\x00unreadable"
    return digest.digest()


def _objects(pdf: pikepdf.Pdf) -> dict[ObjGen, pikepdf.Object]:
    out: dict[ObjGen, pikepdf.Object] = {}
    for obj in pdf.objects:
        if len(out) >= MAX_OBJECTS:
            break
        if isinstance(obj, pikepdf.Object) and obj.is_indirect and obj.objgen != (0, 0):
            out[obj.objgen] = obj
    return out


@dataclass
class _Roles:
    """Which object plays which part in a document (page, content stream, font, field, signature)."""

    pages: list[ObjGen] = field(default_factory=list)
    role: dict[ObjGen, tuple[str, str]] = field(default_factory=dict)  # objgen -> (kind, words)
    sig_values: dict[ObjGen, str] = field(default_factory=dict)  # signature dictionary -> field name

    def claim(self, og: ObjGen, kind: str, words: str) -> None:
        self.role.setdefault(og, (kind, words))


def _og(obj: object) -> ObjGen | None:
    return obj.objgen if isinstance(obj, pikepdf.Object) and obj.is_indirect else None


def _roles(pdf: pikepdf.Pdf) -> _Roles:
    roles = _Roles()
    root = _og(pdf.Root)
    if root is not None:
        roles.claim(root, "other", "the document catalog")
    if (tree := _og(pdf.Root.get("/Pages"))) is not None:
        roles.claim(tree, "other", "the page tree")
    for index, page in enumerate(pdf.pages[: MAX_OBJECTS // 10]):
        number = index + 1
        og = _og(page.obj)
        if og is not None:
            roles.pages.append(og)
            roles.claim(og, "content_changed", f"page {number}: page dictionary")
        contents = page.obj.get("/Contents")
        for item in contents if isinstance(contents, pikepdf.Array) else [contents]:
            if (c := _og(item)) is not None:
                roles.claim(c, "content_changed", f"page {number}: content stream")
        resources = page.obj.get("/Resources")
        if isinstance(resources, pikepdf.Dictionary):
            for group, what in (("/Font", "font"), ("/XObject", "image or form XObject")):
                entries = resources.get(group)
                if isinstance(entries, pikepdf.Dictionary):
                    for key in entries.keys():
                        if (r := _og(entries.get(key))) is not None:
                            roles.claim(r, "content_changed", f"page {number}: {what} {key}")
        annots = page.obj.get("/Annots")
        if (listed := _og(annots)) is not None:
            roles.claim(listed, "other", f"page {number}: list of annotations")
        for annot in annots if isinstance(annots, pikepdf.Array) else []:
            if (a := _og(annot)) is not None and isinstance(annot, pikepdf.Dictionary):
                roles.claim(a, *_annotation_role(annot, number))
                value = annot.get("/V")
                if annot.get("/FT") == "/Sig" and (v := _og(value)) is not None:
                    roles.sig_values[v] = str(annot.get("/T", "?"))
    form = pdf.Root.get("/AcroForm")
    fields = form.get("/Fields") if isinstance(form, pikepdf.Dictionary) else None
    for what, obj in (("the form (AcroForm)", form), ("the form's list of fields", fields)):
        if (og := _og(obj)) is not None:
            roles.claim(og, "other", what)
    for item in fields if isinstance(fields, pikepdf.Array) else []:
        if (f := _og(item)) is not None and isinstance(item, pikepdf.Dictionary):
            roles.claim(f, *_annotation_role(item, None))
            if item.get("/FT") == "/Sig" and (v := _og(item.get("/V"))) is not None:
                roles.sig_values[v] = str(item.get("/T", "?"))
    return roles


def _annotation_role(annot: pikepdf.Dictionary, page: int | None) -> tuple[str, str]:
    where = f"page {page}: " if page is not None else ""
    field_type = annot.get("/FT")
    if field_type == "/Sig":
        return "signature", f"{where}signature field {annot.get('/T', '?')}"
    if field_type is not None:
        return "form_filling", f"{where}form field {annot.get('/T', '?')}"
    subtype = str(annot.get("/Subtype", "/?")).lstrip("/")
    return "annotation", f"{where}{subtype} annotation"


SIG_KEYS = ("/ByteRange", "/Contents", "/Reason", "/M", "/Name", "/Location", "/ContactInfo", "/SubFilter", "/Filter")


def _short(value: object) -> str:
    text = str(value) if not isinstance(value, pikepdf.Array) else " ".join(str(v) for v in value)
    text = re.sub(r"[^\x20-\x7e]", "?", text)
    return text if len(text) <= 60 else text[:57] + "..."


def _sig_changes(name: str, before: pikepdf.Object | None, after: pikepdf.Object) -> str:
    """Which entries of signature ``name``'s dictionary differ, in words (/Contents not printed)."""
    if not isinstance(before, pikepdf.Dictionary) or not isinstance(after, pikepdf.Dictionary):
        return f"signature {name}: signature dictionary replaced"
    parts = []
    for key in sorted(set(before.keys()) | set(after.keys()), key=lambda k: (k not in SIG_KEYS, k)):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and _fingerprint(old) == _fingerprint(new):
            continue
        if key == "/Contents":
            parts.append("/Contents (the signature value) replaced")
        elif old is None:
            parts.append(f"{key} added ({_short(new)})")
        elif new is None:
            parts.append(f"{key} removed (was {_short(old)})")
        else:
            parts.append(f"{key} changed from {_short(old)} to {_short(new)}")
    return f"signature {name}: " + ("; ".join(parts) or "signature dictionary rewritten")


VALIDATION_DATA_KEYS = {"/DSS", "/Extensions"}  # what adding LTV data to a signed PDF touches in the catalog


def _catalog_change(before: pikepdf.Object, after: pikepdf.Object, og: ObjGen) -> tuple[str, str]:
    keys = sorted(
        k
        for k in set(before.keys()) | set(after.keys())
        if k not in before or k not in after or _fingerprint(before[k]) != _fingerprint(after[k])
    )
    kind = "validation_data" if keys and set(keys) <= VALIDATION_DATA_KEYS else "other"
    return kind, f"the document catalog (object {og[0]}): {', '.join(keys) or 'rewritten'} changed"


def _excerpt(obj: pikepdf.Object) -> str:
    try:
        text = obj.read_bytes()[:200].decode("latin-1") if isinstance(obj, pikepdf.Stream) else ""
    except Exception:  # undecodable filter: say nothing about its content
        return ""
    shown = re.findall(r"\(([^)]{1,60})\)", text)
    return f" (it now shows: {' '.join(shown)[:80]})" if shown else ""


def compare(before: pikepdf.Pdf, after: pikepdf.Pdf) -> list[tuple[str, str]]:
    """(kind, words) for each difference a reader of ``after`` sees from ``before``.

    Kinds are :class:`~bidproc.signature.report.Modification` kinds, plus ``signature_dictionary``
    for a signature dictionary redefined after signing and ``validation_data`` for a document
    security store added or updated.
    """
    old_objs, new_objs = _objects(before), _objects(after)
    old_roles, new_roles = _roles(before), _roles(after)
    out: list[tuple[str, str]] = []
    old_pages, new_pages = set(old_roles.pages), set(new_roles.pages)
    for index, og in enumerate(new_roles.pages):
        if og not in old_pages:
            out.append(("page_added", f"page {index + 1} (object {og[0]}) added"))
    for index, og in enumerate(old_roles.pages):
        if og not in new_pages:
            out.append(("page_removed", f"page {index + 1} of the signed document (object {og[0]}) removed"))
    for og, obj in sorted(new_objs.items()):
        old = old_objs.get(og)
        if old is not None and _fingerprint(old) == _fingerprint(obj):
            continue
        verb = "added" if old is None else "redefined"
        if og in new_roles.sig_values or og in old_roles.sig_values:
            name = new_roles.sig_values.get(og) or old_roles.sig_values[og]
            if old is None:  # a later signature: judged on its own
                out.append(("signature", f"signature {name} added (object {og[0]})"))
            else:
                out.append(("signature_dictionary", f"{_sig_changes(name, old, obj)} (object {og[0]})"))
            continue
        if og == _og(after.Root) and old is not None:
            out.append(_catalog_change(old, obj, og))
            continue
        kind, words = new_roles.role.get(og) or old_roles.role.get(og) or ("other", "")
        if og in new_pages and og not in old_pages:
            continue  # reported as an added page
        if kind == "other" and old is None:
            continue  # a new object nothing shown uses: whatever uses it is reported
        if kind == "signature" and old is not None:
            kind = "other"  # an existing signature field rewritten: not the addition of a signature
        detail = f"{words} (object {og[0]}) {verb}" if words else f"object {og[0]} {verb}"
        if kind == "content_changed":
            detail += _excerpt(obj)
        out.append((kind, detail))
    if len(out) > MAX_REPORTED:
        rest = len(out) - MAX_REPORTED
        out = [*out[:MAX_REPORTED], ("other", f"{rest} more objects differ")]
    return out


def changes(data: bytes, signed_end: int, rebuild: bool = False) -> list[tuple[str, str]]:
    """What a tolerant reader of the whole file sees that the signed bytes ``data[:signed_end]`` did not
    contain, as qpdf opens the file; with ``rebuild`` (for bytes no cross-reference section lists),
    if that shows nothing, also with the xref rebuilt by scanning (what viewers do with a damaged
    file, later definitions winning). [] if nothing differs or the signed bytes cannot be opened."""
    if not data[signed_end:].strip(b"\x00\t\n\x0c\r "):
        return []  # nothing after the signed bytes
    try:
        with opened(data[:signed_end]) as before:
            if before is None:
                return []
            for rebuilt in (False, True) if rebuild else (False,):
                with opened(data, rebuilt) as after:
                    found = compare(before, after) if after is not None else []
                if found:
                    return found
    except Exception:  # an explanation only: a structure qpdf chokes on leaves the verdict as it is
        log.warning("comparing the signed bytes with the whole file failed", exc_info=True)
    return []


def rebuilt_changes(data: bytes) -> list[tuple[str, str]]:
    """What a reader rebuilding the cross-reference table shows that one following it does not (objects
    defined in the file but listed in no cross-reference section). [] if the same, or unreadable."""
    try:
        with opened(data) as strict, opened(data, rebuild=True) as rebuilt:
            if strict is None or rebuilt is None:
                return []
            return compare(strict, rebuilt)
    except Exception:  # an explanation only, as in changes()
        log.warning("comparing the file with its rebuilt reading failed", exc_info=True)
    return []
