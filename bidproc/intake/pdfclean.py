"""The PDF work done inside the parser sandbox (see :mod:`bidproc.sandbox.parser`): pikepdf only.

Given the original PDF bytes it makes the reading rendition: qpdf repairs what it can while opening
(its warnings are the repair report), active content is removed from the rendition (JavaScript,
OpenAction and additional actions, Launch and other dangerous actions, embedded files, rich media,
XFA), and the result is linearised. Embedded files are handed back so the parent can scan them.
The original bytes are never written back anywhere: this module only ever sees a copy.
"""

from __future__ import annotations

import io
import json
import re
import struct
from typing import Any

import pikepdf

# Actions that run code, open other files or send data somewhere: never kept in a rendition.
DANGEROUS_ACTIONS = frozenset(
    "/JavaScript /Launch /ImportData /SubmitForm /GoToE /GoToR /Rendition /RichMediaExecute /Movie /Sound".split()
)
ACTIVE_ANNOTATIONS = frozenset("/RichMedia /FileAttachment /Screen /Movie /Sound /3D".split())
_OPTIONS = struct.Struct("<L")
_STREAM_NAME = re.compile(r"stream <[^>]*>:? ?")


def _say(problem: object) -> str:
    """qpdf's message without the in-memory stream's repr, which means nothing to a reader."""
    return _STREAM_NAME.sub("", str(problem))[:300]


def pack_request(pdf: bytes, options: dict[str, Any]) -> bytes:
    raw = json.dumps(options).encode()
    return _OPTIONS.pack(len(raw)) + raw + pdf


def normalise_task(request: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Child entry point: (header, [rendition, attachment...])."""
    (length,) = _OPTIONS.unpack_from(request)
    options = json.loads(request[_OPTIONS.size : _OPTIONS.size + length])
    data = memoryview(request)[_OPTIONS.size + length :]
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        return {"status": "encrypted"}, []
    except pikepdf.PdfError as exc:
        if "bad_alloc" in str(exc):
            raise MemoryError(str(exc)) from exc
        return {"status": "malformed", "problems": [_say(exc)]}, []
    with pdf:
        problems = [_say(w) for w in pdf.get_warnings()]
        try:
            if len(pdf.pages) == 0:
                return {"status": "malformed", "problems": [*problems, "no page could be recovered"][:20]}, []
            signed = _is_signed(pdf)
            removed, attachments = _strip_active_content(pdf, int(options["max_attachment_bytes"]))
            out = io.BytesIO()
            linearised = True
            try:
                pdf.save(out, linearize=True, encryption=False, deterministic_id=True)
            except pikepdf.PdfError:
                # qpdf cannot always linearise a repaired file; a plain rewrite still reads the same
                out = io.BytesIO()
                linearised = False
                pdf.save(out, encryption=False, deterministic_id=True)
            problems += [_say(w) for w in pdf.get_warnings()[len(problems) :]]
        except pikepdf.PdfError as exc:
            if "bad_alloc" in str(exc):  # qpdf hit the child's memory limit: not the file's structure
                raise MemoryError(str(exc)) from exc
            return {"status": "malformed", "problems": [*problems, _say(exc)][:20]}, []
    header = {
        "status": "ok",
        "repaired": bool(problems),
        "problems": problems[:20],
        "removed": sorted(removed),
        "signed": signed,
        "linearised": linearised,
        "attachments": [name for name, _ in attachments],
    }
    return header, [out.getvalue(), *(blob for _, blob in attachments)]


def _is_signed(pdf: pikepdf.Pdf) -> bool:
    root = pdf.Root
    if "/Perms" in root:
        return True
    acroform = root.get("/AcroForm")
    if not isinstance(acroform, pikepdf.Dictionary):
        return False
    for field in acroform.get("/Fields", pikepdf.Array()):
        if isinstance(field, pikepdf.Dictionary) and field.get("/FT") == "/Sig" and "/V" in field:
            return True
    return False


def _strip_active_content(pdf: pikepdf.Pdf, max_attachment_bytes: int) -> tuple[set[str], list[tuple[str, bytes]]]:
    """Remove active content everywhere in the object graph; return what was removed and the attachments."""
    removed: set[str] = set()
    attachments: list[tuple[str, bytes]] = []
    budget = max_attachment_bytes
    root = pdf.Root
    for key in ("/OpenAction", "/AA"):
        if key in root:
            del root[key]
            removed.add(key)
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        for key in ("/JavaScript", "/EmbeddedFiles"):
            if key in names:
                removed.add(key)
    acroform = root.get("/AcroForm")
    if isinstance(acroform, pikepdf.Dictionary) and "/XFA" in acroform:
        del acroform["/XFA"]
        removed.add("/XFA")

    # Walk every object reachable from the trailer (iteratively: hostile files nest deeply).
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [pdf.trailer]
    while stack:
        obj = stack.pop()
        if isinstance(obj, pikepdf.Object) and obj.is_indirect:
            if obj.objgen in seen:
                continue
            seen.add(obj.objgen)
        if isinstance(obj, pikepdf.Stream):
            obj = obj.stream_dict
        if isinstance(obj, pikepdf.Dictionary):
            if "/EF" in obj:  # a file specification with embedded files: hand them to the scanner
                ef = obj.get("/EF")
                if isinstance(ef, pikepdf.Dictionary):
                    for key in list(ef.keys()):
                        stream = ef.get(key)
                        if isinstance(stream, pikepdf.Stream) and budget > 0:
                            blob = stream.read_bytes()
                            budget -= len(blob)
                            if budget >= 0:
                                attachments.append((str(obj.get("/UF", obj.get("/F", key))), blob))
                del obj["/EF"]
                removed.add("/EmbeddedFiles")
            _strip_dictionary(obj, removed)
            stack.extend(obj.get(k) for k in list(obj.keys()) if k != "/Parent")
        elif isinstance(obj, pikepdf.Array):
            stack.extend(obj)
    if isinstance(names, pikepdf.Dictionary):
        for key in ("/JavaScript", "/EmbeddedFiles"):
            if key in names:
                del names[key]
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if isinstance(annots, pikepdf.Array):
            kept = [
                a for a in annots if not (isinstance(a, pikepdf.Dictionary) and a.get("/Subtype") in ACTIVE_ANNOTATIONS)
            ]
            if len(kept) != len(annots):
                page.obj["/Annots"] = pikepdf.Array(kept)
                removed.add("/Annots(active)")
    return removed, attachments


def _strip_dictionary(obj: pikepdf.Dictionary, removed: set[str]) -> None:
    if "/AA" in obj:
        del obj["/AA"]
        removed.add("/AA")
    for key in ("/A", "/Next", "/OpenAction"):
        action = obj.get(key)
        if isinstance(action, pikepdf.Dictionary) and str(action.get("/S", "")) in DANGEROUS_ACTIONS:
            del obj[key]
            removed.add(str(action.get("/S")))
        elif isinstance(action, pikepdf.Array):  # /Next may be an array of actions: drop the dangerous ones
            kept = [
                a
                for a in action
                if not (isinstance(a, pikepdf.Dictionary) and str(a.get("/S", "")) in DANGEROUS_ACTIONS)
            ]
            if len(kept) != len(action):
                removed.update(
                    str(a.get("/S"))
                    for a in action
                    if isinstance(a, pikepdf.Dictionary) and str(a.get("/S", "")) in DANGEROUS_ACTIONS
                )
                obj[key] = pikepdf.Array(kept)
    if obj.get("/S") in DANGEROUS_ACTIONS and "/JS" in obj:
        del obj["/JS"]
        removed.add("/JavaScript")
    for key in ("/RichMediaContent", "/RichMediaSettings"):
        if key in obj:
            del obj[key]
            removed.add("/RichMedia")
