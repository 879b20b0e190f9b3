"""The third-party corpus in ../shared/corpus: where it is, and what its signers are.

The corpus is a sibling folder, not part of the repository. Without it, its tests skip with the reason
on a developer's machine and fail in CI (``CI=true``), like the services of :mod:`tests.services`;
parametrisation over its files never touches the disk at collection time.
"""

from __future__ import annotations

import base64
import io
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from asn1crypto import cms, x509
from lxml import etree
from pyhanko.pdf_utils.generic import parse_pdf_date
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.services import SHARED, unavailable

# One place for the corpus path: BIDPROC_TEST_CORPUS, by default the sibling ../shared/corpus
CORPUS = Path(os.environ.get("BIDPROC_TEST_CORPUS") or SHARED / "corpus")
MISSING = "corpus-missing"  # the one parameter a test gets when the corpus is not there


def corpus_dir(folder: str = "") -> Path:
    """``../shared/corpus/<folder>``; skip (locally) or fail (CI) when it is not there."""
    path = CORPUS / folder
    if not path.is_dir():
        unavailable(f"the shared test corpus {path} (clone the sibling 'shared' folder next to the repository)")
    return path


def corpus_names(folder: str) -> list[str]:
    """The file names of a corpus folder for ``parametrize``: one placeholder when it is missing, so
    collection never fails and the test itself reports the missing corpus (see :func:`corpus_file`)."""
    path = CORPUS / folder
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else [MISSING]


def corpus_file(folder: str, name: str) -> Path:
    return corpus_dir(folder) / name


@pytest.fixture
def corpus() -> Path:
    """The corpus root, for tests that need it (skips or fails as :func:`corpus_dir` does)."""
    return corpus_dir()


@dataclass(frozen=True)
class Signer:
    """The signer certificate a corpus file carries and the time it claims to have signed."""

    certificate: x509.Certificate
    signing_time: datetime | None


def _cms_signer(signed_data: cms.SignedData) -> Signer | None:
    si = signed_data["signer_infos"][0]
    sid = si["sid"]
    certs = [c.chosen for c in signed_data["certificates"] or [] if c.name == "certificate"]
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        match = [c for c in certs if c.issuer == issuer and c.serial_number == serial]
    else:
        match = [c for c in certs if c.key_identifier == sid.chosen.native]
    if not match:
        return None
    when = None
    for attr in si["signed_attrs"] or []:
        if attr["type"].native == "signing_time":
            when = attr["values"][0].native
    return Signer(match[0], when)


def pdf_signer(data: bytes) -> Signer | None:
    """The first PDF signature's signer and its /M time; from the raw /Contents when pyhanko cannot parse the file."""
    try:
        sig = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures[0]
        return Signer(sig.signer_cert, sig.self_reported_timestamp)
    except Exception:  # the corrupted corpus file: pyhanko cannot read it, its signature container is intact
        pass
    for match in re.finditer(rb"/Contents\s*<([0-9A-Fa-f\s]+)>", data):
        try:
            info = cms.ContentInfo.load(bytes.fromhex(re.sub(rb"\s", b"", match.group(1)).decode()), strict=False)
            if info["content_type"].native == "signed_data":
                found = _cms_signer(info["content"])
                when = re.search(rb"/M\s*\((D:[^)]*)\)", data[match.start() - 2000 : match.end() + 2000])
                if found is not None and when is not None:
                    found = Signer(found.certificate, parse_pdf_date(when.group(1).decode(), strict=False))
                return found
        except (ValueError, TypeError):
            continue
    return None


def cms_signer(data: bytes) -> Signer | None:
    return _cms_signer(cms.ContentInfo.load(data)["content"])


DS = "{http://www.w3.org/2000/09/xmldsig#}"


def xml_signer(data: bytes) -> Signer | None:
    """The first ds:Signature's KeyInfo certificate and its xades:SigningTime."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    for sig in root.iter(f"{DS}Signature"):
        der = sig.findtext(f"{DS}KeyInfo//{DS}X509Certificate")
        if der:
            when = next((e.text for e in sig.iter() if etree.QName(e).localname == "SigningTime"), None)
            return Signer(
                x509.Certificate.load(base64.b64decode(der)),
                datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None,
            )
    return None


def signer_of_file(path: Path) -> Signer | None:
    data = path.read_bytes()
    if path.suffix == ".pdf":
        return pdf_signer(data)
    if path.suffix == ".xml":
        return xml_signer(data)
    return cms_signer(data)
