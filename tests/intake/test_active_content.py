"""Active content hidden in less common places is stripped from the rendition, never from the original."""

from __future__ import annotations

import hashlib
import io

import pikepdf

from bidproc.intake.limits import IntakeLimits
from bidproc.intake.normalise import normalise_pdf


def _hostile_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    launch = pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe"))
    script = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    # A harmless-looking link whose action chains on to Launch and JavaScript through a /Next array.
    link = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=pikepdf.Array([0, 0, 50, 50]),
        A=pikepdf.Dictionary(S=pikepdf.Name.GoTo, D=pikepdf.Array([pdf.pages[0].obj, pikepdf.Name.Fit]),
                             Next=pikepdf.Array([launch, script]))))
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=pikepdf.String("<xdp:xdp/>"))
    pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([link, pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.RichMedia, Rect=pikepdf.Array([0, 0, 10, 10]),
        RichMediaContent=pikepdf.Dictionary()))]))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_launch_in_next_array_xfa_and_richmedia_are_stripped() -> None:
    original = _hostile_pdf()
    digest = hashlib.sha256(original).hexdigest()
    outcome = normalise_pdf("offre.pdf", original, digest, IntakeLimits())
    assert outcome.code is None and outcome.rendition is not None
    assert "pdf.active_content" in outcome.warnings
    assert hashlib.sha256(original).hexdigest() == digest  # the original bytes are untouched
    with pikepdf.open(io.BytesIO(outcome.rendition.data)) as clean:  # uncompressed, every object in clear
        plain = io.BytesIO()
        clean.save(plain, qdf=True, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    text = plain.getvalue()
    assert b"/Link" in text  # the link itself stays: only what it would launch goes
    for marker in (b"/Launch", b"/JavaScript", b"calc.exe", b"/XFA", b"/RichMedia"):
        assert marker not in text, marker
