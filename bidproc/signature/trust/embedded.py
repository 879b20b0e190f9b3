"""Certificates a signed file carries: candidate intermediates between a signer and a listed CA.

A trusted list often names a root or a CA above the one that issued the signer; the certificates in
between travel inside the signature (CMS ``certificates``, PDF signatures' CMS, ``ds:X509Certificate``).
They are only *candidates*: the qualification step checks every issuer signature on the way up.
"""

from __future__ import annotations

import base64
import io
import logging

from asn1crypto import cms

from bidproc.signature.discover import Found, Kind
from bidproc.signature.xades.xml_safety import parse_untrusted

log = logging.getLogger(__name__)
MAX_CERTS = 200  # enough for any honest chain set; bounds the path search on hostile input
MAX_XML_BYTES = 50 * 1024 * 1024
DS = "http://www.w3.org/2000/09/xmldsig#"


def _from_signed_data(sd: cms.SignedData) -> list[bytes]:
    return [c.chosen.dump() for c in (sd["certificates"] or []) if c.name == "certificate"]


def embedded_certificates(found: Found, data: bytes) -> tuple[bytes, ...]:
    """DER certificates in ``data`` (never raises: a file it cannot read carries none)."""
    out: list[bytes] = []
    try:
        if found.kind is Kind.CMS and found.signed_data is not None:
            out = _from_signed_data(found.signed_data)
        elif found.kind is Kind.PDF:
            from pyhanko.pdf_utils.reader import PdfFileReader

            reader = PdfFileReader(io.BytesIO(data), strict=False)
            for sig in reader.embedded_signatures[:50]:
                out += _from_signed_data(sig.signed_data)
        elif found.kind is Kind.XML:
            root = parse_untrusted(data, max_bytes=MAX_XML_BYTES, max_depth=256).getroot()
            found_certs = root.iter(f"{{{DS}}}X509Certificate")
            out = [base64.b64decode("".join(el.text.split())) for el in found_certs if el.text]
    except Exception as exc:  # malformed input: the validators report it; here it just means no candidates
        log.debug("no embedded certificates read", exc_info=exc)
        return ()
    return tuple(dict.fromkeys(out))[:MAX_CERTS]
