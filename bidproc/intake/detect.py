"""What a file really is, from its content: a media type and one stable ``kind``.

libmagic (python-magic) names most formats from the first bytes. It cannot tell a CMS signature or
an XML signature from other DER or XML, so those are classified by parsing (asn1crypto, lxml with a
parser that loads no DTD, expands no entity and never touches the network). ZIP-based formats
(OOXML, ODF, ASiC) are told apart by their member names, which the caller reads from the central
directory after the archive's structure has been checked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

import magic
from asn1crypto import cms
from lxml import etree

from bidproc.errors import UnsafeXML

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
ZIP_EOCD = b"PK\x05\x06"
PDF_MAGIC = b"%PDF-"
XMLDSIG_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
# DER ContentInfo whose contentType is id-signedData (1.2.840.113549.1.7.2)
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")

EXECUTABLE_TYPES = frozenset(
    {
        "application/x-executable",
        "application/x-dosexec",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "application/x-mach-binary",
        "application/x-sharedlib",
        "application/x-pie-executable",
        "application/x-elf",
        "application/x-object",
        "application/x-msi",
        "application/java-archive",
        "application/x-java-applet",
        "application/x-ms-shortcut",
        "application/x-bat",
        "application/hta",
        "application/javascript",
        "application/x-bytecode.python",
    }
)
# Scripts are plain text to libmagic when they have no shebang: the name is the only clue we have,
# and a script named as one is refused whatever its content.
EXECUTABLE_EXTENSIONS = frozenset(
    "exe dll com scr pif bat cmd vbs vbe js jse mjs wsf wsh ps1 psm1 msi msp lnk hta cpl jar sh bash zsh "
    "py pyc pl rb php reg inf scf gadget application appref-ms elf run apk dmg".split()
)
ZIP_KINDS = frozenset({"archive", "office-ooxml", "office-odf", "asic"})
LEGACY_OFFICE_TYPES = frozenset(
    {
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.ms-office",
        "application/x-ole-storage",
        "application/cdfv2",
        "text/rtf",
        "application/rtf",
    }
)

# What a known extension promises; a file whose content is another kind is `type.mismatch`.
_EXT_KINDS: dict[str, frozenset[str]] = {}
for _kinds, _exts in [
    ({"pdf"}, "pdf"),
    ({"office-ooxml"}, "docx docm xlsx xlsm pptx pptm dotx xltx"),
    ({"office-odf"}, "odt ods odp odg"),
    ({"office-legacy"}, "doc xls ppt rtf dot xlt"),
    ({"image"}, "png jpg jpeg gif tif tiff bmp webp"),
    ({"text"}, "txt csv tsv md json"),
    ({"xml", "xml-signature"}, "xml"),
    ({"cms-signature"}, "p7s p7m p7c pkcs7"),
    ({"asic"}, "asice asics sce scs"),
    (set(ZIP_KINDS), "zip"),
]:
    for _ext in _exts.split():
        _EXT_KINDS[_ext] = frozenset(_kinds)


@dataclass(frozen=True)
class Detection:
    media_type: str
    kind: str
    zip_like: bool = False  # has a ZIP structure the caller must check before trusting the kind
    polyglot: bool = False  # valid as two formats at once (PDF and ZIP)


def extension(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower().lstrip(".")


def sniff(head: bytes, tail: bytes, name: str) -> Detection:
    """First look, from the first and last bytes only."""
    media_type = magic.from_buffer(head, mime=True) if head else "application/x-empty"
    pdf_start = PDF_MAGIC in head[:1024]  # PDF readers accept the header anywhere in the first KiB
    zip_end = has_zip_end(tail)
    zip_like = head.startswith(ZIP_MAGIC) or (zip_end and not pdf_start and media_type == "application/zip")
    if pdf_start and (zip_end or head.startswith(ZIP_MAGIC)):
        return Detection(media_type, "pdf" if head.startswith(PDF_MAGIC) else "archive", zip_like=False, polyglot=True)
    if media_type in EXECUTABLE_TYPES or "script" in media_type or extension(name) in EXECUTABLE_EXTENSIONS:
        return Detection(media_type, "executable")
    if zip_like:
        return Detection(media_type, "archive", zip_like=True)
    if head.startswith(PDF_MAGIC) or media_type == "application/pdf":
        return Detection("application/pdf", "pdf")
    if media_type.lower() in LEGACY_OFFICE_TYPES:
        return Detection(media_type, "office-legacy")
    if media_type == "image/svg+xml" or media_type in {"text/xml", "application/xml"}:
        return Detection(media_type, "xml")
    if media_type.startswith("image/"):
        return Detection(media_type, "image")
    if _looks_like_cms(head):
        return Detection("application/pkcs7-signature", "cms-signature")
    if media_type.startswith("text/"):
        return Detection(media_type, "text")
    if _is_short_text(head):
        return Detection("text/plain", "text")
    return Detection(media_type, "unknown")


def _is_short_text(head: bytes) -> bool:
    """libmagic calls a few bytes of plain text "octet-stream"; printable UTF-8 without NUL is text."""
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def has_zip_end(tail: bytes) -> bool:
    """A real end-of-central-directory record closes ``tail`` (its comment runs to the last byte).

    Stricter than finding the 4-byte signature, which random compressed data contains now and then.
    """
    at = tail.rfind(ZIP_EOCD)
    while at >= 0:
        if len(tail) - at >= 22 and at + 22 + int.from_bytes(tail[at + 20 : at + 22], "little") == len(tail):
            return True
        at = tail.rfind(ZIP_EOCD, 0, at)
    return False


def refine_zip(detection: Detection, names: Sequence[str], first_member: bytes) -> Detection:
    """OOXML, ODF or ASiC from the member names (``first_member`` is the ``mimetype`` entry if first)."""
    mimetype = first_member.decode("ascii", "replace").strip() if names and names[0] == "mimetype" else ""
    if mimetype.startswith("application/vnd.etsi.asic"):
        return Detection(mimetype, "asic", zip_like=True)
    if mimetype.startswith("application/vnd.oasis.opendocument"):
        return Detection(mimetype, "office-odf", zip_like=True)
    if "[Content_Types].xml" in names:
        media = detection.media_type
        if media == "application/zip":
            media = "application/vnd.openxmlformats-officedocument"
        return Detection(media, "office-ooxml", zip_like=True)
    if "META-INF/manifest.xml" in names and any(n.startswith("META-INF/") and "signature" in n.lower() for n in names):
        return Detection("application/vnd.etsi.asic-e+zip", "asic", zip_like=True)
    return Detection("application/zip", "archive", zip_like=True)


def _looks_like_cms(head: bytes) -> bool:
    if head.startswith(b"-----BEGIN PKCS7-----") or head.startswith(b"-----BEGIN CMS-----"):
        return True
    # SEQUENCE (any length form) followed at once by the signedData OID
    return head[:1] == b"\x30" and SIGNED_DATA_OID in head[2 : 8 + len(SIGNED_DATA_OID)]


def classify_cms(data: bytes) -> Detection | None:
    """A CMS SignedData (DER or PEM) with at least one signer, or None when it is not one."""
    if data.startswith(b"-----BEGIN"):
        body = b"".join(line for line in data.splitlines() if line and not line.startswith(b"-----"))
        try:
            data = base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            return None
    try:
        info = cms.ContentInfo.load(data, strict=False)
        if info["content_type"].native != "signed_data":
            return None
        signed = info["content"]
        if len(signed["signer_infos"]) == 0:
            return None
        detached = signed["encap_content_info"]["content"].native is None
    except Exception:  # asn1crypto raises many types on hostile DER; any of them means "not CMS"
        return None
    return Detection("application/pkcs7-signature" if detached else "application/pkcs7-mime", "cms-signature")


UnsafeXml = UnsafeXML  # XML declaring entities (billion laughs, external entities): refused, never expanded


def classify_xml(stream: IO[bytes], media_type: str) -> Detection:
    """Plain XML or an XML signature, parsed as a stream: elements are dropped once seen, and the
    parse stops at the first ``ds:Signature``, so memory does not grow with the document."""
    events = etree.iterparse(
        stream, events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    first = True
    try:
        for event, element in events:
            if first:
                first = False
                dtd = element.getroottree().docinfo.internalDTD
                if dtd is not None and any(True for _ in dtd.iterentities()):
                    raise UnsafeXml("the XML declares entities")
            if event == "start" and element.tag == XMLDSIG_SIGNATURE:
                return Detection(media_type, "xml-signature")
            if event == "end":
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except etree.XMLSyntaxError:
        return Detection(media_type, "text" if media_type.startswith("text/") else "unknown")
    return Detection(media_type, "xml")


def mismatch(name: str, kind: str) -> bool:
    """The name's extension promises another kind than the content is."""
    expected = _EXT_KINDS.get(extension(name))
    return expected is not None and kind not in expected


def enveloped_content(data: bytes) -> bytes | None:
    """The document inside an enveloping CMS SignedData (.p7m), or None when it is detached or unreadable."""
    try:
        info = cms.ContentInfo.load(data, strict=False)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"]
        return None if content.native is None else bytes(content.native)
    except (ValueError, TypeError, KeyError):
        return None
