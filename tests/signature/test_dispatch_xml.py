"""XML files are dispatched to the XAdES validator (bidproc.signature.xades.validator, owned by the XAdES work)."""

from __future__ import annotations

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, SignatureFormat, SubIndication
from bidproc.signature.validate import validate_files
from tests.corpus import corpus_dir

pytest.importorskip("bidproc.signature.xades.validator")



def test_xml_signatures_are_found_and_wrapping_fails() -> None:
    files = {p.name: p.read_bytes() for p in corpus_dir("xades").iterdir()}
    reports = validate_files(files, ValidationPolicy(offline=True))
    assert set(reports) == set(files)
    wrapped = reports["XSW-enveloped-fake-content-two-same-id.xml"].signatures[0]
    assert wrapped.format is SignatureFormat.XADES
    assert (wrapped.indication, wrapped.subindication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert reports["xsw-original.xml"].signatures and not reports["xsw-original.xml"].bottom_line
    assert all(s.french_rule is not None for r in reports.values() for s in r.signatures)
