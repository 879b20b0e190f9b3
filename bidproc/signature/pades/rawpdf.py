"""Last resort for a PDF too damaged for pyhanko to parse: check each signature's byte range directly.

Hand-written because pyhanko needs a readable xref to find signatures at all. A damaged file whose
signed bytes were altered must still come out as TOTAL_FAILED/HASH_FAILURE (the EU DSS corpus file
``pdf-signed-corrupted.pdf`` is one), not as a vague parse error. When the digest matches, the file is
intact where signed but unreadable as a document: TOTAL_FAILED/FORMAT_FAILURE.
"""

from __future__ import annotations

import re

from asn1crypto import cms
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from bidproc.signature.outcome import signer_of
from bidproc.signature.pades.tail import END_OF_REVISION, explain_failed, tail_modifications
from bidproc.signature.report import Indication, SignatureFormat, SignatureReport, SubIndication

BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s+(\d{1,12})\s*\]")
MAX_SIGNATURES = 100


def raw_signatures(name: str, data: bytes, reason: str) -> list[SignatureReport]:
    """A report per /ByteRange found in the bytes, with what a tolerant reader sees changed after it."""
    out = []
    for report, end in _raw_signatures(name, data, reason):
        # nothing parsed: every byte after the signed range is unaccounted for
        revision = len(END_OF_REVISION.findall(data, 0, end)) if end else 0
        tail = tail_modifications(data, end, revision) if end else ()
        out.append(explain_failed(report, data, end, known=tail))
    return out


def _raw_signatures(name: str, data: bytes, reason: str) -> list[tuple[SignatureReport, int | None]]:
    reports: list[tuple[SignatureReport, int | None]] = []
    for match in list(BYTE_RANGE.finditer(data))[:MAX_SIGNATURES]:
        start1, len1, start2, len2 = (int(g) for g in match.groups())
        base = SignatureReport(
            file=name,
            format=SignatureFormat.PADES,
            indication=Indication.TOTAL_FAILED,
            subindication=SubIndication.FORMAT_FAILURE,
            errors=(f"pdf unreadable: {reason}",),
            signature_id=f"byte range at {match.start()}",
        )
        # a range running past the end of the file is digested as far as it goes: bytes are missing,
        # so the digest cannot match and the verdict is HASH_FAILURE, as for any other change
        if start1 != 0 or start2 < len1 or start2 > len(data):
            reports.append((base, None))
            continue
        hex_contents = data[len1:start2].strip().lstrip(b"<").rstrip(b">")
        try:
            sd = cms.ContentInfo.load(bytes.fromhex(hex_contents.decode("ascii")).rstrip(b"\x00"))["content"]
            si = sd["signer_infos"][0]
            wanted = find_unique_cms_attribute(si["signed_attrs"], "message_digest").native
            h = hashes.Hash(get_pyca_cryptography_hash(si["digest_algorithm"]["algorithm"].native))
            h.update(data[:len1])
            h.update(data[start2 : start2 + len2])
            intact = h.finalize() == wanted
            certs = [c.chosen for c in sd["certificates"]] if sd["certificates"].native else []
            signer = signer_of(certs[0]) if certs else None
        except Exception:  # not even a CMS blob there: the byte range points at garbage
            reports.append((base, None))
            continue
        sub = SubIndication.FORMAT_FAILURE if intact else SubIndication.HASH_FAILURE
        report = SignatureReport(
            file=name,
            format=SignatureFormat.PADES,
            indication=Indication.TOTAL_FAILED,
            subindication=sub,
            signature_id=base.signature_id,
            signer=signer,
            errors=base.errors,
        )
        reports.append((report, min(start2 + len2, len(data))))
    return reports
