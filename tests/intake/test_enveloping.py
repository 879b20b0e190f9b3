"""An enveloping CAdES (.p7m) carries the signed document: its content goes through intake too."""

from __future__ import annotations

import io
import zipfile

from bidproc.config import ClamdSettings
from bidproc.domain import Verdict
from bidproc.intake.inspect import inspect
from bidproc.intake.scan import ClamdScanner
from bidproc.intake.streams import bytes_opener
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401
from tests.signature.signing import make_pdf, sign_cms

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_p7m_content_is_inspected(pki: TestPKI, clamd_settings: ClamdSettings) -> None:  # noqa: F811
    scanner = ClamdScanner(clamd_settings)
    p7m = sign_cms(make_pdf("Acte d'engagement"), pki, detached=False, timestamp=False)
    v = inspect("ae.pdf.p7m", bytes_opener(p7m), scanner)
    assert v.verdict is Verdict.ACCEPTED and v.kind == "cms-signature"
    assert [(m.file, m.kind, m.verdict) for m in v.members] == [("ae.pdf", "pdf", Verdict.ACCEPTED)]
    assert v.members[0].renditions  # the signed PDF gets its reading rendition like any PDF


def test_malware_inside_a_p7m_quarantines_it(pki: TestPKI, clamd_settings: ClamdSettings) -> None:  # noqa: F811
    # A deflated ZIP inside the CMS (clamd also finds it when scanning the whole .p7m first).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("eicar.txt", EICAR + b" " * 200)
    assert EICAR not in buffer.getvalue()
    p7m = sign_cms(buffer.getvalue(), pki, detached=False, timestamp=False)
    v = inspect("annexes.zip.p7m", bytes_opener(p7m), scanner=ClamdScanner(clamd_settings))
    assert v.verdict is Verdict.QUARANTINED and v.code == "malware.detected"
    assert v.malware and v.malware[0].signature.startswith("Eicar-Test-Signature")


def test_p7m_content_is_held_to_the_same_rules(pki: TestPKI, clamd_settings: ClamdSettings) -> None:  # noqa: F811
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\x3e\x00" + b"\x00" * 300
    p7m = sign_cms(elf, pki, detached=False, timestamp=False)
    v = inspect("outil.bin.p7m", bytes_opener(p7m), scanner=ClamdScanner(clamd_settings))
    assert v.verdict is Verdict.REJECTED and v.code == "type.not_allowed"
    assert [(m.file, m.kind, m.code) for m in v.members] == [("outil.bin", "executable", "type.not_allowed")]
