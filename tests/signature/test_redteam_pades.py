"""Red-team: PDF changes after an approval signature that pyhanko's difference analysis accepts but that
change what a reader sees, and structural tricks on the later revisions (signer trusted throughout).

The hole found here: pyhanko lets any later revision create a *signature field* (ISO 32000 lets anyone
prepare a field for a co-signer), with whatever appearance stream its widget carries. Left unsigned, that
field is no signature (nothing reports it) but its appearance is drawn over the signed page: "Signed by
the buyer", "Prix: 1 EUR" on an opaque box. It is the shadow "hide" overlay through a signature widget.
"""

# pyhanko's PDF object constructors and writer methods carry no annotations
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from bidproc.signature.report import Indication, SubIndication
from tests.pki import TestPKI
from tests.signature import pdf_attacks as attack
from tests.signature.signing import sign_pdf
from tests.signature.test_pades_attacks import only, sigs

FORGED = (  # an opaque white box over the signed text, and what the forger wants read instead
    b"q 1 1 1 rg 0 0 480 100 re f Q "
    b"BT /F1 14 Tf 0 0 0 rg 10 60 Td (Signe par: Acheteur) Tj 0 -30 Td (Prix: 1 EUR) Tj ET"
)
GREY_BOX = b"q 0.95 0.95 0.95 rg 0 0 480 100 re f Q 0.5 w 0 0 480 100 re S"  # pyhanko's "empty field" look




def _name(value: str) -> generic.NameObject:
    return generic.NameObject(value)


def add_signature_widget(
    signed: bytes,
    drawing: bytes | None = FORGED,
    rect: tuple[int, int, int, int] = (60, 700, 540, 800),
    flags: int = 4,
    kid: bool = False,
    name: str = "Signature2",
    value: generic.PdfObject | None = None,
) -> bytes:
    """An incremental update adding an *unsigned* signature field on page 1 whose widget draws ``drawing``
    (None: no /AP at all); ``kid``: the widget is a separate /Kids entry of the field (not merged)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    width, height = rect[2] - rect[0], rect[3] - rect[1]
    widget = generic.DictionaryObject(
        {
            _name("/Type"): _name("/Annot"),
            _name("/Subtype"): _name("/Widget"),
            _name("/F"): generic.NumberObject(flags),
            _name("/Rect"): generic.ArrayObject([generic.NumberObject(n) for n in rect]),
            _name("/P"): page_ref,
        }
    )
    if drawing is not None:
        resources = generic.DictionaryObject({_name("/Font"): page["/Resources"].raw_get("/Font")})
        ap = generic.StreamObject(
            {
                _name("/Type"): _name("/XObject"),
                _name("/Subtype"): _name("/Form"),
                _name("/BBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, width, height)]),
                _name("/Resources"): resources,
            },
            stream_data=drawing,
        )
        widget[_name("/AP")] = generic.DictionaryObject({_name("/N"): writer.add_object(ap)})
    field_keys = {_name("/FT"): _name("/Sig"), _name("/T"): generic.TextStringObject(name)}
    if value is not None:  # a value that is no signature dictionary: still nothing signed
        field_keys[_name("/V")] = value
    if kid:
        field_ref = writer.add_object(generic.DictionaryObject(field_keys))
        widget[_name("/Parent")] = field_ref
        widget_ref = writer.add_object(widget)
        field_ref.get_object()[_name("/Kids")] = generic.ArrayObject([widget_ref])
    else:
        widget.update(field_keys)
        field_ref = widget_ref = writer.add_object(widget)
    fields = writer.root["/AcroForm"]["/Fields"]
    fields.append(field_ref)
    writer.update_container(fields)
    annots = page["/Annots"]
    annots.append(widget_ref)
    writer.update_container(annots)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def base(signed: dict[str, bytes]) -> bytes:
    return signed["B-T"]


# ---- an unsigned signature field drawn over the signed page ---------------------------------------


@pytest.mark.parametrize(
    ("drawing", "kid"),
    [(FORGED, False), (FORGED, True), (GREY_BOX, False)],
    ids=["forged-text", "forged-text-in-a-kid-widget", "opaque-box"],
)
def test_unsigned_signature_field_drawing_over_the_page_fails(
    pki: TestPKI, base: bytes, drawing: bytes, kid: bool
) -> None:
    """pyhanko accepts a new signature field and its appearance at form-filling level; nothing signs it,
    so no report names it, while every viewer draws it over the signed text."""
    sig = only(pki, add_signature_widget(base, drawing, kid=kid))
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    change = [m for m in sig.modifications if m.kind == "annotation"]
    assert len(change) == 1 and not change[0].allowed, sig.modifications
    assert "unsigned signature field Signature2" in change[0].detail
    assert "pdf.shadow_attack" in sig.warnings


@pytest.mark.parametrize("value", [generic.NullObject(), generic.NumberObject(0)], ids=["null", "number"])
def test_a_value_that_is_no_signature_does_not_make_the_field_signed(
    pki: TestPKI, base: bytes, value: generic.PdfObject
) -> None:
    sig = only(pki, add_signature_widget(base, FORGED, value=value))
    assert (sig.indication, sig.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert [m.kind for m in sig.modifications if not m.allowed] == ["annotation"], sig.modifications


@pytest.mark.parametrize(
    ("drawing", "rect", "flags"),
    [
        (None, (60, 700, 540, 800), 4),
        (b"", (60, 700, 540, 800), 4),
        (FORGED, (0, 0, 0, 0), 4),
        (FORGED, (60, 700, 540, 800), 2),
    ],
    ids=["no-appearance", "empty-appearance", "zero-rectangle", "hidden"],
)
def test_signature_field_prepared_for_a_co_signer_stays_allowed(
    pki: TestPKI, base: bytes, drawing: bytes | None, rect: tuple[int, int, int, int], flags: int
) -> None:
    """Controls: a field that draws nothing (no appearance, an empty one, no area, hidden) is what a
    workflow adds for the next signer; it hides nothing."""
    sig = only(pki, add_signature_widget(base, drawing, rect=rect, flags=flags))
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors, sig.modifications)
    assert all(m.allowed for m in sig.modifications)


def test_a_prepared_field_then_signed_visibly_by_the_co_signer_passes(pki: TestPKI, base: bytes) -> None:
    """The field is signed in a later revision: that signature's own appearance is the co-signer's."""
    prepared = add_signature_widget(base, None)
    first, second = sigs(pki, sign_pdf(prepared, pki, field="Signature2"))
    assert first.indication is Indication.TOTAL_PASSED, first.modifications
    assert second.indication is Indication.TOTAL_PASSED


def test_forged_field_also_fails_the_earlier_of_two_signatures(pki: TestPKI, base: bytes) -> None:
    both = sign_pdf(base, pki, field="Signature2")
    first, second = sigs(pki, add_signature_widget(both, FORGED, name="Signature3"))
    assert first.indication is Indication.TOTAL_FAILED and second.indication is Indication.TOTAL_FAILED


# ---- catalogue-level tricks in a later revision (pins: pyhanko refuses them) -----------------------


def _catalog_update(base: bytes, extra: bytes) -> bytes:
    lay = attack.layout(base)
    root = attack.raw_object(base, lay.root)
    return attack.append_update(base, {lay.root: root.replace(b"<<", b"<< " + extra, 1)})


@pytest.mark.parametrize(
    "extra",
    [
        b"/OpenAction << /S /JavaScript /JS (app.alert\\('Prix: 1 EUR'\\)) >>",
        b"/Names << /JavaScript << /Names [(a) << /S /JavaScript /JS (this.print\\(\\)) >>] >> >>",
        b"/AA << /WC << /S /JavaScript /JS (1) >> >>",
        b"/OCProperties << /OCGs [] /D << /BaseState /OFF >> >>",
    ],
    ids=["open-action", "names-javascript", "additional-actions", "optional-content"],
)
def test_catalog_additions_after_signing_fail(pki: TestPKI, base: bytes, extra: bytes) -> None:
    sig = only(pki, _catalog_update(base, extra))
    assert sig.indication is Indication.TOTAL_FAILED, (sig.subindication, sig.modifications)


def test_trailer_root_switched_to_a_new_catalog_fails(pki: TestPKI, base: bytes) -> None:
    """A later revision whose trailer names another catalogue (with a page tree of its own)."""
    lay = attack.layout(base)
    new_root, new_pages, new_content = lay.size, lay.size + 1, lay.size + 2
    root = attack.raw_object(base, lay.root).replace(b"%d 0 R" % lay.pages, b"%d 0 R" % new_pages)
    page = attack.raw_object(base, lay.first_page)
    objects = {
        new_root: root,
        new_pages: b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (new_pages + 3),
        new_content: attack.text_stream("Prix: 1 EUR"),
        new_pages + 3: page.replace(b"%d 0 R" % lay.content, b"%d 0 R" % new_content).replace(
            b"%d 0 R" % lay.pages, b"%d 0 R" % new_pages
        ),
    }
    tampered = attack.append_update(base, objects)
    tampered = tampered.replace(b"/Root %d 0 R /Prev" % lay.root, b"/Root %d 0 R /Prev" % new_root)
    sig = only(pki, tampered)
    assert sig.indication is Indication.TOTAL_FAILED, (sig.subindication, sig.modifications)


def test_perms_added_later_to_grant_annotations_fails(pki: TestPKI, base: bytes) -> None:
    """A later revision makes the approval signature look like a P=3 certification, then annotates."""
    lay = attack.layout(base)
    perms = b"/Perms << /DocMDP %d 0 R >>" % lay.sig
    tampered = _catalog_update(base, perms)
    tampered = attack.append_update(tampered, attack.overlay(attack.layout(tampered), tampered))
    sig = only(pki, tampered)
    assert sig.indication is Indication.TOTAL_FAILED, (sig.subindication, sig.modifications)
