"""PDF structure attacks on crafted files (issue 8, classes 2, 7 and 8), signer trusted: integrity only.

Class 2: bytes after the last revision a strict parser reads (the incremental saving attack).
Class 7: byte ranges that are not exactly their own /Contents, or that overlap another signature's.
Class 8: shadow attacks (hide, replace, hide-and-replace) and signature dictionary spoofing, with
the change named even when the strict parser refuses the file.
"""

from __future__ import annotations

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Modification, SignatureReport, SubIndication
from bidproc.signature.validate import validate_file
from tests.pki import TestPKI
from tests.signature import pdf_attacks as attack
from tests.signature.signing import make_pdf, sign_pdf, signer_for

FAILED_FORMAT = (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)


def sigs(pki: TestPKI, data: bytes) -> list[SignatureReport]:
    report = validate_file("offre.pdf", data, ValidationPolicy(trust_anchors=(pki.root_der,)))
    assert not report.problems
    return list(report.signatures)


def only(pki: TestPKI, data: bytes) -> SignatureReport:
    found = sigs(pki, data)
    assert len(found) == 1, found
    return found[0]


def kinds(sig: SignatureReport) -> list[tuple[str, bool]]:
    return [(m.kind, m.allowed) for m in sig.modifications]


def named(sig: SignatureReport, kind: str, *words: str) -> Modification:
    """The one modification of ``kind`` whose detail holds all ``words``."""
    found = [m for m in sig.modifications if m.kind == kind and all(w in m.detail for w in words)]
    assert found, (kind, words, sig.modifications)
    return found[0]


@pytest.fixture(scope="module")
def base(signed: dict[str, bytes]) -> bytes:
    return signed["B-T"]


# ---- class 2: bytes after the last parsed revision ---------------------------------------------


def test_trailing_whitespace_is_harmless(pki: TestPKI, base: bytes) -> None:
    sig = only(pki, base + b"\r\n \n\x00\t\x0c")
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors)
    assert sig.modifications == ()


@pytest.mark.parametrize(
    "mode", ["none", "eof_only", "old_startxref", "bad_startxref", "no_trailer", "broken_xref_stream", "no_prev"]
)
def test_page_appended_without_a_readable_revision_fails(pki: TestPKI, base: bytes, mode: str) -> None:
    """A page tree with a new page appended after the signed revision, its cross-reference part missing,
    broken or cut off from the signed revisions: a reader rebuilding the xref shows page 2."""
    tampered = attack.append_update(base, attack.added_page(attack.layout(base)), mode)
    sig = only(pki, tampered)
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    tail = named(sig, "unparsed_data", f"at offset {len(base)}", "tolerant reader")
    assert not tail.allowed and f"{len(tampered) - len(base) - 1} bytes" in tail.detail
    assert not named(sig, "page_added", "page 2").allowed
    assert "pdf.unparsed_tail" in sig.warnings and "pdf.incremental_saving_attack" in sig.warnings
    assert sig.signed_data == ("revision 1 (1 page), 0 later revisions",)  # what the signature itself covers


@pytest.mark.parametrize("mode", ["none", "old_startxref", "bad_startxref", "broken_xref_stream"])
def test_content_redefined_without_a_readable_revision_fails(pki: TestPKI, base: bytes, mode: str) -> None:
    sig = only(pki, attack.append_update(base, attack.replaced_content(attack.layout(base)), mode))
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    named(sig, "unparsed_data", f"at offset {len(base)}")
    assert not named(sig, "content_changed", "page 1", "Prix total: 1 EUR").allowed
    assert "pdf.shadow_attack" in sig.warnings


@pytest.mark.parametrize("junk", [b"garbage after the end\n", b"%comment\n" + b"x" * 3000])
def test_junk_bytes_after_the_last_eof_fail(pki: TestPKI, base: bytes, junk: bytes) -> None:
    """Short junk (pyhanko still finds the %%EOF before it) and long junk (it does not)."""
    sig = only(pki, base + junk)
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    tail = named(sig, "unparsed_data", f"{len(junk.strip())} bytes at offset {len(base)}")
    assert "shows no change" in tail.detail
    assert [k for k, _ in kinds(sig)] == ["unparsed_data"]


def test_object_hidden_between_revisions_fails_the_earlier_signature(pki: TestPKI, base: bytes) -> None:
    """A content stream redefined without an xref entry, then a genuine second signature: a strict
    reader ignores the object, one rebuilding the xref shows it. The second signature signed it."""
    lay = attack.layout(base)
    hidden = base + b"%d 0 obj\n%s\nendobj\n" % (lay.content, attack.text_stream("Prix: 1 EUR"))
    first, second = sigs(pki, sign_pdf(hidden, pki, field="Signature2"))
    assert (first.indication, first.subindication) == FAILED_FORMAT
    named(first, "unparsed_data", f"object {lay.content} at offset {len(base)}")
    named(first, "content_changed", "Prix: 1 EUR")
    assert second.indication is Indication.TOTAL_PASSED


@pytest.mark.parametrize(("between", "fails"), [(b"xyz junk\n", True), (b"%a comment\n\r\n", False)])
def test_bytes_between_two_revisions(pki: TestPKI, base: bytes, between: bytes, fails: bool) -> None:
    """Junk between the signed revision and a genuine second signature belongs to no revision; a
    comment or whitespace there is plain PDF syntax."""
    first, second = sigs(pki, sign_pdf(base + between, pki, field="Signature2"))
    assert second.indication is Indication.TOTAL_PASSED
    if fails:
        assert (first.indication, first.subindication) == FAILED_FORMAT
        named(first, "unparsed_data", f"at offset {len(base)}", "between revision 1 and revision 2")
    else:
        assert first.indication is Indication.TOTAL_PASSED, first.modifications


def test_a_genuine_second_revision_is_not_an_unparsed_tail(pki: TestPKI, base: bytes) -> None:
    first, second = sigs(pki, sign_pdf(base, pki, field="Signature2"))
    assert first.indication is Indication.TOTAL_PASSED and second.indication is Indication.TOTAL_PASSED
    assert kinds(first) == [("signature", True)]


# ---- class 7: byte ranges ------------------------------------------------------------------------


def test_resigning_over_the_same_ranges_passes(pki: TestPKI, base: bytes) -> None:
    """Control for the tests below: the re-signing helper makes signatures that verify."""
    sig = only(pki, attack.resign_with_ranges(base, signer_for(pki, "signer"), attack.byte_range(base)))
    assert sig.indication is Indication.TOTAL_PASSED, (sig.subindication, sig.errors)


def test_gap_that_is_not_exactly_the_contents_string_fails(
    pki: TestPKI, base: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap shifted 10 bytes before /Contents: those bytes are unsigned, yet the ranges add up to the
    file size, so pyhanko calls the coverage "entire file" and passes it."""
    from bidproc.signature.pades import byte_ranges

    _, len1, start2, len2 = attack.byte_range(base)
    shifted = attack.resign_with_ranges(base, signer_for(pki, "signer"), (0, len1 - 10, start2 - 10, len2 + 10))
    sig = only(pki, shifted)
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    assert "pdf.byte_range_invalid" in sig.warnings
    assert any("not exactly one hex string" in e for e in sig.errors)
    monkeypatch.setattr(byte_ranges, "problems", lambda *_: [])
    assert only(pki, shifted).indication is Indication.TOTAL_PASSED  # why the check exists


@pytest.mark.parametrize("which", ["reversed", "empty_second", "unsigned_end"])
def test_malformed_ranges_fail(pki: TestPKI, base: bytes, which: str) -> None:
    _, len1, start2, len2 = attack.byte_range(base)
    ranges = {
        "reversed": (start2, len2, 0, len1),
        "empty_second": (0, len1, start2, 0),
        "unsigned_end": (0, len1, start2, len2 - 200),
    }[which]
    sig = only(pki, attack.resign_with_ranges(base, signer_for(pki, "signer"), ranges))
    assert (sig.indication, sig.subindication) == FAILED_FORMAT


def test_second_field_with_a_copy_of_the_signature_fails(pki: TestPKI, base: bytes) -> None:
    """A later revision adds field "Copy" whose value repeats the first signature's /ByteRange and
    /Contents: one signature shown twice. The copy fails; the genuine one is untouched."""
    first, copy = sigs(pki, attack.second_field_for_same_signature(base))
    assert first.indication is Indication.TOTAL_PASSED
    assert (copy.signature_id, copy.indication, copy.subindication) == ("Copy", *FAILED_FORMAT)
    assert "pdf.byte_range_invalid" in copy.warnings
    assert any("overlap those of signature Signature1" in e for e in copy.errors)
    assert any("not the /Contents of this signature's own dictionary" in e for e in copy.errors)


def test_second_field_sharing_the_signature_dictionary_fails(pki: TestPKI, base: bytes) -> None:
    reports = {s.signature_id: s for s in sigs(pki, attack.second_field_for_same_signature(base, share=True))}
    copy = reports["Copy"]
    assert (copy.indication, copy.subindication) == FAILED_FORMAT
    assert any("overlap those of signature Signature1" in e for e in copy.errors)
    assert reports["Signature1"].indication is not Indication.TOTAL_PASSED  # pyhanko refuses the new field


# ---- class 8: shadow attacks and signature dictionary spoofing -----------------------------------


def test_hide_overlay_in_a_revision_with_a_broken_xref(pki: TestPKI, base: bytes) -> None:
    overlay = attack.append_update(base, attack.overlay(attack.layout(base), base), "bad_startxref")
    sig = only(pki, overlay)
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    assert not named(sig, "annotation", "page 1: FreeText annotation", "added").allowed
    assert "pdf.shadow_attack" in sig.warnings


def test_replace_font_redefined(pki: TestPKI, base: bytes) -> None:
    lay = attack.layout(base)
    sig = only(pki, attack.append_update(base, attack.replaced_font(lay)))
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    assert kinds(sig) == [("content_changed", False)]
    named(sig, "content_changed", "page 1: font /F1", f"object {lay.font}")
    assert "pdf.shadow_attack" in sig.warnings


@pytest.fixture(scope="module")
def shadowed(pki: TestPKI) -> tuple[bytes, int, int]:
    """A signed PDF whose signed revision carries two unused objects (hide-and-replace prepared):
    object ``size`` (listed) and a second definition of the content stream (listed nowhere).
    Returns (signed, offset of the listed unused object, offset of the unlisted definition)."""
    pdf = make_pdf()
    lay = attack.layout(pdf)
    prepared = attack.append_update(
        pdf,
        {lay.size: attack.text_stream("Prix: 1 EUR")},
        hidden={lay.content: attack.text_stream("Prix cache: 2 EUR")},
    )
    signed = sign_pdf(prepared, pki)
    assert only(pki, signed).indication is Indication.TOTAL_PASSED  # the shadow objects are invisible
    return signed, attack.object_offset(prepared, lay.size), len(pdf)


@pytest.mark.parametrize("junk", [b"", b"trailing junk\n"])
def test_hide_and_replace_xref_pointing_at_another_object(
    pki: TestPKI, shadowed: tuple[bytes, int, int], junk: bytes
) -> None:
    """The later xref points the content stream's number at the unused object (another number): the
    strict parser raises "Expected object ID", which used to be all the report said."""
    signed, unused, _ = shadowed
    lay = attack.layout(signed)
    tampered = attack.xref_only(signed, {lay.content: unused})
    sig = only(pki, tampered + junk)
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    assert any("Expected object ID" in e for e in sig.errors)
    unused_number = int(signed[unused:].split(b" ", 1)[0])
    assert unused_number != lay.content
    named(sig, "other", f"points object {lay.content} at offset {unused}", f"object {unused_number} is defined there")
    change = named(sig, "content_changed", "page 1: content stream", f"object {lay.content}")
    assert not change.allowed and "seen by a tolerant reader" in change.detail
    assert "pdf.shadow_attack" in sig.warnings
    assert "pdf.universal_signature_forgery" not in sig.warnings  # the diagnosis is the change, not a forgery
    if junk:  # and the unparsed bytes after it are reported too
        named(sig, "unparsed_data", f"at offset {len(tampered)}")
        assert "pdf.unparsed_tail" in sig.warnings


def test_hide_and_replace_xref_pointing_at_a_hidden_definition(pki: TestPKI, shadowed: tuple[bytes, int, int]) -> None:
    signed, _, hidden = shadowed
    lay = attack.layout(signed)
    header = b"%d 0 obj" % lay.content
    assert signed[hidden : hidden + len(header)] == header
    sig = only(pki, attack.xref_only(signed, {lay.content: hidden}))
    assert (sig.indication, sig.subindication) == FAILED_FORMAT
    assert kinds(sig) == [("content_changed", False), ("other", False)], sig.modifications
    named(sig, "other", f"points object {lay.content} at offset {hidden}", "inside the signed bytes", "swapped in")
    assert "pdf.shadow_attack" in sig.warnings


@pytest.mark.parametrize(
    ("spoof", "words"),
    [
        ({"reason": "Approved"}, ["/Reason added (Approved)"]),
        ({"reason": None, "when": "D:20200101000000Z"}, ["/M changed", "D:20200101000000Z"]),
        ({"reason": None, "byte_range": b"[0 1000 2000 30]"}, ["/ByteRange changed", "0 1000 2000 30"]),
    ],
)
def test_signature_dictionary_spoofing(pki: TestPKI, base: bytes, spoof: dict[str, object], words: list[str]) -> None:
    sig = only(pki, attack.spoofed_signature_dictionary(base, **spoof))  # type: ignore[arg-type]
    assert sig.indication is Indication.TOTAL_FAILED
    assert sig.subindication in {SubIndication.FORMAT_FAILURE, SubIndication.HASH_FAILURE}
    change = named(sig, "signature_dictionary", "signature Signature1", *words)
    assert not change.allowed
    assert "pdf.signature_dictionary_changed" in sig.warnings and "pdf.byte_range_invalid" in sig.warnings


# ---- hostile sizes -------------------------------------------------------------------------------


def test_hostile_tails_are_bounded(pki: TestPKI, base: bytes) -> None:
    """Tens of thousands of appended objects, or thousands of %%EOF markers in a file that does not
    parse: bounded work, and never a pass."""
    import time

    lay = attack.layout(base)
    many = {lay.size + n: b"<< /Type /Annot /Subtype /Square /Rect [0 0 9 9] >>" for n in range(30_000)}
    many[lay.content] = attack.text_stream("Prix total: 1 EUR")
    markers = b"%%EOF\n" * 5_000 + b"startxref\n999999999\n%%EOF\n"
    for tampered in (attack.append_update(base, many, "none"), base + markers):
        start = time.monotonic()
        sig = only(pki, tampered)
        assert time.monotonic() - start < 30
        assert (sig.indication, sig.subindication) == FAILED_FORMAT
        named(sig, "unparsed_data", f"at offset {len(base)}")
