"""SEDA 2.2 ArchiveTransfer: a tender's evidence packages as one transfer ZIP for an archive system (Vitam).

``manifest.xml`` describes: one ArchiveUnit for the tender (RecordGrp), one per bid (File) carrying
its appraisal rule, one per file of the package (Item) pointing at its BinaryDataObject (SHA-512,
size, format).

The appraisal rule comes from the tender's retention policy as it stands at export time (its
contract dates, ``tenders.contract``), not from the package's manifest, whose rule was frozen when
the package was written (usually the default, the dates not known yet): rule ``BIDPROC-<RULE>-<N>Y``
(the duration lives in the archive system's rule referential), start date the contract signature
(bids), the end of performance (works) or the receipt (dates not known). The final action follows
French practice for public procurement (Code de la commande publique R2184-12/13 and the archives'
management tables for marchés publics): the offers not retained are destroyed at the end of their
DUA (``Destroy``); the awarded bid is a piece of the contract, which the archive service sorts and
keeps (``Keep``). While the award is not known (``AppraisalPolicy.awarded`` empty) every bid gets
``Keep``: never a destruction decided on missing facts. The files themselves follow under ``content/<bid>/...``.
Built with lxml; :func:`validate` checks it against the SEDA 2.2 XSDs offline, through the local
catalog (schemas import each other by URL).
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from bidproc.archive.retention import RetentionPolicy
from bidproc.archive.retrieve import package_files
from bidproc.archive.worm import ArchiveStore
from bidproc.config import ArchiveSettings
from bidproc.errors import BidprocError, Code

NS = "fr:gouv:culture:archivesdefrance:seda:v2.2"
Q = f"{{{NS}}}"
STEP = 1 << 20
# PRONOM identifiers of what a package holds, where PRONOM has one; the objects themselves are
# ciphertext (or CMS envelopes) until the opening and are declared as such. Hand-kept: no maintained
# Python package (fido, siegfried) is installed here to identify formats from signatures.
FORMATS: dict[str, tuple[str, str, str | None]] = {  # suffix -> (literal, MIME type, PRONOM id)
    ".json": ("JSON Data Interchange Format", "application/json", "fmt/817"),
    ".pem": ("Privacy-Enhanced Mail certificate", "application/x-pem-file", None),
    ".p7s": ("CMS SignedData (detached)", "application/pkcs7-signature", None),
    ".tsr": ("RFC 3161 time-stamp response", "application/timestamp-reply", None),
    ".ers": ("RFC 4998 evidence record", "application/octet-stream", None),
    ".enc": ("bidproc encrypted object", "application/octet-stream", None),
    "SHA256SUMS": ("Plain text", "text/plain", "x-fmt/111"),
    ".SHA384SUMS": ("Plain text", "text/plain", "x-fmt/111"),  # evidence-record.SHA384SUMS (renewal.py)
    ".SHA512SUMS": ("Plain text", "text/plain", "x-fmt/111"),
}


@dataclass(frozen=True)
class Agency:
    identifier: str
    name: str = ""


@dataclass(frozen=True)
class AppraisalPolicy:
    """What decides the bids' appraisal rules in a transfer (see the module's doc)."""

    retention: RetentionPolicy
    settings: ArchiveSettings
    awarded: frozenset[str] = field(default_factory=frozenset)  # bid ids; empty: the award is not known

    def rule(self, bid_id: str, received_at: datetime) -> tuple[str, date, str]:
        """(rule identifier, start date, final action) of one bid."""
        term = self.retention.term(received_at, self.settings)
        final = "Destroy" if self.awarded and bid_id not in self.awarded else "Keep"
        return f"BIDPROC-{term.name.upper()}-{term.years}Y", term.start.date(), final


def _fmt(path: str) -> tuple[str, str, str | None]:
    name = path.rsplit("/", 1)[-1]
    return FORMATS.get(name) or FORMATS.get(Path(name).suffix) or ("Unknown", "application/octet-stream", None)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, Q + tag, attrs)
    if text is not None:
        node.text = text
    return node


def _read(archive: ArchiveStore, key: str) -> bytes:
    with archive.open(key) as fh:
        return fh.read()


def _digest(archive: ArchiveStore, key: str) -> tuple[str, int]:
    h, size = hashlib.sha512(), 0
    with archive.open(key) as fh:
        while piece := fh.read(STEP):
            h.update(piece)
            size += len(piece)
    return h.hexdigest(), size


def manifest_xml(tender: dict[str, str], packages: list[tuple[str, dict[str, Any], dict[str, str]]],
                 archive: ArchiveStore, *, archival: Agency, transferring: Agency, originating: Agency,
                 now: datetime, appraisal: AppraisalPolicy) -> tuple[bytes, list[tuple[str, str]]]:
    """The ArchiveTransfer document and the (zip path, archive key) of every binary object it lists.

    ``packages``: (bid id, its manifest.json, the package's files: name -> archive key).
    """
    root = etree.Element(Q + "ArchiveTransfer", nsmap={None: NS})
    _el(root, "Comment", f"bidproc evidence packages of tender {tender['reference']}")
    _el(root, "Date", now.replace(microsecond=0).isoformat())
    _el(root, "MessageIdentifier", f"bidproc-{uuid.uuid4()}")
    codes = _el(root, "CodeListVersions")
    for tag in ("ReplyCodeListVersion", "MessageDigestAlgorithmCodeListVersion", "MimeTypeCodeListVersion",
                "EncodingCodeListVersion", "FileFormatCodeListVersion", "CompressionAlgorithmCodeListVersion",
                "DataObjectVersionCodeListVersion", "StorageRuleCodeListVersion", "AppraisalRuleCodeListVersion",
                "AccessRuleCodeListVersion", "DisseminationRuleCodeListVersion", "ReuseRuleCodeListVersion",
                "ClassificationRuleCodeListVersion", "AuthorizationReasonCodeListVersion",
                "RelationshipCodeListVersion"):
        _el(codes, tag, "bidproc-1")
    package = _el(root, "DataObjectPackage")
    files: list[tuple[str, str]] = []
    units: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = []
    for bid_id, manifest, names in packages:
        items = []
        for name, key in names.items():
            object_id = f"BDO-{len(files) + 1}"
            uri = f"content/{bid_id}/{name}"
            digest, size = _digest(archive, key)
            obj = _el(package, "BinaryDataObject", id=object_id)
            _el(obj, "DataObjectVersion", "BinaryMaster_1")
            _el(obj, "Uri", uri)
            _el(obj, "MessageDigest", digest, algorithm="SHA-512")
            _el(obj, "Size", str(size))
            literal, mime, pronom = _fmt(name)
            fmt = _el(obj, "FormatIdentification")
            _el(fmt, "FormatLitteral", literal)
            _el(fmt, "MimeType", mime)
            if pronom:
                _el(fmt, "FormatId", pronom)
            info = _el(obj, "FileInfo")
            _el(info, "Filename", name.rsplit("/", 1)[-1])
            files.append((uri, key))
            items.append((object_id, name))
        units.append((bid_id, manifest, items))
    described = _el(package, "DescriptiveMetadata")
    top = _el(described, "ArchiveUnit", id="AU-tender")
    content = _el(top, "Content")
    _el(content, "DescriptionLevel", "RecordGrp")
    _el(content, "Title", f"{tender['reference']} - {tender['title']}")
    _el(content, "OriginatingAgencyArchiveUnitIdentifier", tender["id"])
    _el(content, "Description", f"Plis reçus pour la consultation {tender['reference']} ({tender['id']})")
    for n, (bid_id, manifest, items) in enumerate(units, 1):
        unit = _el(top, "ArchiveUnit", id=f"AU-bid-{n}")
        management = _el(unit, "Management")
        rule = _el(management, "AppraisalRule")
        received = datetime.fromisoformat(manifest["received_at"])
        rule_id, start, final = appraisal.rule(bid_id, received)
        _el(rule, "Rule", rule_id)
        _el(rule, "StartDate", start.isoformat())
        _el(rule, "FinalAction", final)
        body = _el(unit, "Content")
        _el(body, "DescriptionLevel", "File")
        _el(body, "Title", f"Pli de {manifest.get('bidder') or 'inconnu'}")
        _el(body, "OriginatingAgencyArchiveUnitIdentifier", bid_id)
        _el(body, "Description", f"Paquet de preuve version {manifest['version']}; conservation: "
                                 f"{manifest['retention']['rule']} (jusqu'au {manifest['retention']['until']})")
        _el(body, "ReceivedDate", received.replace(microsecond=0).isoformat())
        for m, (object_id, name) in enumerate(items, 1):
            item = _el(unit, "ArchiveUnit", id=f"AU-bid-{n}-{m}")
            item_content = _el(item, "Content")
            _el(item_content, "DescriptionLevel", "Item")
            _el(item_content, "Title", name)
            reference = _el(item, "DataObjectReference")
            _el(reference, "DataObjectReferenceId", object_id)
    managed = _el(package, "ManagementMetadata")
    _el(managed, "OriginatingAgencyIdentifier", originating.identifier)
    for tag, agency in (("ArchivalAgency", archival), ("TransferringAgency", transferring)):
        _el(_el(root, tag), "Identifier", agency.identifier)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True), files


def export_tender(archive: ArchiveStore, tender: dict[str, str], bid_prefixes: dict[str, str], out: Path, *,
                  archival: Agency, transferring: Agency, originating: Agency, now: datetime,
                  appraisal: AppraisalPolicy) -> int:
    """Write the transfer ZIP; return how many bids it holds (bids without a package are left out)."""
    packages = []
    for bid_id, bid_prefix in sorted(bid_prefixes.items()):
        try:
            names = package_files(archive, bid_prefix)
        except BidprocError as exc:
            if exc.code is Code.STORAGE_NOT_FOUND:
                continue
            raise
        packages.append((bid_id, json.loads(_read(archive, names["manifest.json"])), names))
    document, files = manifest_xml(tender, packages, archive, archival=archival, transferring=transferring,
                                   originating=originating, now=now, appraisal=appraisal)
    with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr("manifest.xml", document)
        for uri, key in files:
            with archive.open(key) as src, zf.open(uri, "w", force_zip64=True) as dst:
                while piece := src.read(STEP):
                    dst.write(piece)
    return len(packages)


class _CatalogResolver(etree.Resolver):  # type: ignore[misc]
    """Maps the schemas' remote locations to local files, from an OASIS catalog (no network)."""

    def __init__(self, catalog: Path) -> None:
        super().__init__()
        tree = etree.parse(str(catalog))
        ns = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"
        self.map = {e.get("systemId"): str(catalog.parent / str(e.get("uri"))) for e in tree.iter(ns + "system")}

    def resolve(self, url: str, pubid: str | None, context: object) -> Any:
        local = self.map.get(url)
        return self.resolve_filename(local, context) if local else None


def validate(document: bytes, schemas: Path) -> list[str]:
    """Schema errors of a SEDA 2.2 message ([] when valid), offline through ``schemas/catalog.xml``."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_CatalogResolver(schemas / "catalog.xml"))
    schema = etree.XMLSchema(etree.parse(str(schemas / "seda-2.2" / "seda-2.2-main.xsd"), parser))
    doc = etree.fromstring(document, etree.XMLParser(no_network=True, resolve_entities=False))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
