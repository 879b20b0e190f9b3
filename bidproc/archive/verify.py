"""Check an evidence package offline (a directory or a ZIP of the same layout), naming what fails.

Every hash in SHA256SUMS and in manifest.json (SHA-256 and SHA-512), both seals (pyhanko's CMS
validation against the roots of ``certs/seal-chain.pem``, at the time of the package's timestamp),
the RFC 3161 timestamp over SHA256SUMS (against ``certs/tsa-chain.pem``), and files nobody listed.
The chains shipped in the package prove nothing by themselves (a forger ships their own): the roots'
SHA-256 fingerprints are reported, and compared with expected ones when given.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from asn1crypto import cms, core, crl, ocsp, pem
from asn1crypto import x509 as asn1_x509

from bidproc.archive.package import PROOFS
from bidproc.errors import BidprocError
from bidproc.timestamps.verify import verify_response

RECORD = "evidence-record.ers"  # optional: the RFC 4998 record of the package, added by `evidence get`
RECORD_PREFIX = "evidence-record."  # the record and the SHA512SUMS-style lists its later chains cover
REQUIRED = ("manifest.json", "manifest.json.p7s", "certs/seal-chain.pem", "certs/tsa-chain.pem", *PROOFS)
MAX_READ_WHOLE = 64 << 20  # manifest, sums, chains, seals, tokens, record: read whole, so bounded
SUMS_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
STEP = 1 << 20


class PackageFiles(Protocol):
    def names(self) -> list[str]: ...

    def chunks(self, name: str) -> Iterator[bytes]: ...


class DirectoryFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def chunks(self, name: str) -> Iterator[bytes]:
        with (self.root / name).open("rb") as fh:
            while piece := fh.read(STEP):
                yield piece


class ZipFiles:
    """A ZIP read in place (nothing extracted); one top-level folder around the layout is allowed."""

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)
        files = [i.filename for i in self.zf.infolist() if not i.is_dir()]
        tops = {n.split("/", 1)[0] for n in files}
        self.base = f"{tops.pop()}/" if "SHA256SUMS" not in files and len(tops) == 1 else ""
        self._names = sorted({n[len(self.base):] for n in files if n.startswith(self.base)})
        # The same name twice: tools disagree on which entry counts (zipfile reads the last one).
        self.duplicates = sorted({n[len(self.base):] for n in files if files.count(n) > 1})

    def names(self) -> list[str]:
        return list(self._names)

    def chunks(self, name: str) -> Iterator[bytes]:
        with self.zf.open(self.base + name) as fh:
            while piece := fh.read(STEP):
                yield piece


def open_package(path: Path) -> PackageFiles:
    return DirectoryFiles(path) if path.is_dir() else ZipFiles(path)


@dataclass
class Report:
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    notes: list[str] = field(default_factory=list)
    roots: dict[str, list[str]] = field(default_factory=dict)  # chain file -> root SHA-256 fingerprints

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, name: str, why: str) -> None:
        self.failures.append((name, why))


def _read(files: PackageFiles, name: str) -> bytes:
    return b"".join(files.chunks(name))


def _hashes(files: PackageFiles, name: str) -> tuple[int, str, str]:
    h256, h512, size = hashlib.sha256(), hashlib.sha512(), 0
    for piece in files.chunks(name):
        h256.update(piece)
        h512.update(piece)
        size += len(piece)
    return size, h256.hexdigest(), h512.hexdigest()


def _certs(data: bytes) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]


def _roots(certs: list[asn1_x509.Certificate]) -> list[asn1_x509.Certificate]:
    return [c for c in certs if c.self_signed in {"maybe", "yes"}]


def verify_package(path: Path, expected_roots: frozenset[str] = frozenset()) -> Report:
    """Check everything; ``expected_roots`` (SHA-256 hex of root certificates) must contain both roots."""
    report = Report()
    try:
        files = open_package(path)
        names = files.names()
    except (OSError, zipfile.BadZipFile) as exc:
        report.fail(str(path), f"cannot read the package: {exc}")
        return report
    present = set(names)
    for name in getattr(files, "duplicates", []):
        report.fail(name, "appears more than once in the ZIP")
    for name in REQUIRED:
        if name not in present:
            report.fail(name, "missing from the package")
    if not report.ok:
        return report
    hashes = {n: _hashes(files, n) for n in names}
    for name in (*REQUIRED, *(n for n in names if n.startswith(RECORD_PREFIX))):
        if name in hashes and hashes[name][0] > MAX_READ_WHOLE:
            report.fail(name, f"larger than {MAX_READ_WHOLE} bytes: not a file bidproc writes")
    if not report.ok:
        return report
    sums = _read(files, "SHA256SUMS")
    _check_sums(sums, hashes, report)
    seal_certs, tsa_certs = (_certs(_read(files, n)) for n in ("certs/seal-chain.pem", "certs/tsa-chain.pem"))
    anchors: dict[str, list[asn1_x509.Certificate]] = {}
    for name, certs in (("certs/seal-chain.pem", seal_certs), ("certs/tsa-chain.pem", tsa_certs)):
        roots = {hashlib.sha256(c.dump()).hexdigest(): c for c in _roots(certs)}
        report.roots[name] = list(roots)
        # With pinned roots only those are trusted: `-CAfile` (and pyhanko) trust every root in a file,
        # so a forger's root next to a copy of the genuine one must not count.
        anchors[name] = [c for fp, c in roots.items() if not expected_roots or fp in expected_roots]
        if not roots:
            report.fail(name, "holds no root (self-signed) certificate")
        elif expected_roots and set(roots) - expected_roots:
            report.fail(name, "holds a root that is not one of the expected roots (a chain of someone else's)")
        elif expected_roots and not anchors[name]:
            report.fail(name, "its root is not one of the expected roots (a chain of someone else's)")
    when: datetime | None = None
    try:
        when = verify_response(_read(files, "SHA256SUMS.tsr"), hashlib.sha256(sums).digest(),
                               [c.dump() for c in anchors["certs/tsa-chain.pem"]])
        report.notes.append(f"SHA256SUMS existed at {when.isoformat()} (RFC 3161)")
    except BidprocError as exc:
        report.fail("SHA256SUMS.tsr", exc.message)
    for content in ("SHA256SUMS", "manifest.json"):
        # The manifest's seal carries its own signature timestamp and revocation data (CAdES B-LT; B-T in
        # packages sealed before the service PKI had a CRL), checked as well.
        p7s = _read(files, content + ".p7s")
        why = _check_seal(_read(files, content), p7s, anchors["certs/seal-chain.pem"],
                          seal_certs, when, anchors["certs/tsa-chain.pem"] if content == "manifest.json" else None)
        if why:
            report.fail(content + ".p7s", why)
        elif content == "manifest.json":
            level = "B-LT, revocation data embedded and checked" if _carries_revocation(p7s) else "B-T"
            report.notes.append(f"manifest.json.p7s: CAdES {level}")
    _check_manifest(_read(files, "manifest.json"), hashes, report)
    if RECORD in present:
        from bidproc.archive.records import verify_record

        _check_listings(files, hashes, report)
        check = verify_record(_read(files, RECORD), lambda algo: _data_object(files, hashes, sums, algo),
                              anchors["certs/tsa-chain.pem"])
        if check.ok:
            report.notes.append(f"evidence record: SHA256SUMS unchanged since {check.times[0].isoformat()} "
                                f"({len(check.times)} archive timestamps)")
        else:
            report.fail(RECORD, check.reason)
    else:
        report.notes.append("no evidence record in the package (run `bidproc evidence renew`, then get it again)")
    return report


def _check_sums(sums: bytes, hashes: dict[str, tuple[int, str, str]], report: Report) -> None:
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.decode("utf-8", "replace").splitlines(), 1):
        match = SUMS_LINE.match(line)
        if not match or match.group(2) in listed:
            report.fail("SHA256SUMS", f"line {number} is malformed or repeats a file")
            continue
        listed[match.group(2)] = match.group(1)
    for name, digest in listed.items():
        if name in PROOFS or name.startswith(RECORD_PREFIX):
            report.fail(name, "SHA256SUMS lists one of its own proofs")
        elif name not in hashes:
            report.fail(name, "listed in SHA256SUMS but missing from the package")
        elif hashes[name][1] != digest:
            report.fail(name, "SHA-256 differs from SHA256SUMS (altered)")
    for name in hashes:
        if name not in listed and name not in PROOFS and not name.startswith(RECORD_PREFIX):
            report.fail(name, "not listed in SHA256SUMS (added after sealing)")


def _digests(files: PackageFiles, hashes: dict[str, tuple[int, str, str]], algorithm: str) -> dict[str, str]:
    """Every package file's hash under ``algorithm`` (the record and its lists aside)."""
    out = {}
    for name, (_, sha256, sha512) in hashes.items():
        if name.startswith(RECORD_PREFIX):
            continue
        if algorithm in {"sha256", "sha512"}:
            out[name] = sha256 if algorithm == "sha256" else sha512
        else:
            digest = hashlib.new(algorithm)
            for piece in files.chunks(name):
                digest.update(piece)
            out[name] = digest.hexdigest()
    return out


def _data_object(files: PackageFiles, hashes: dict[str, tuple[int, str, str]], sums: bytes, algorithm: str) -> bytes:
    """What a record chain under ``algorithm`` covers (renewal.data_object), recomputed from the files."""
    if algorithm == "sha256":
        return sums
    from bidproc.archive.package import sums_text

    return sums_text(sorted(_digests(files, hashes, algorithm).items()))


def _check_listings(files: PackageFiles, hashes: dict[str, tuple[int, str, str]], report: Report) -> None:
    """Name each file that differs from a stronger-algorithm list a record chain covers (the chain
    itself only says its data object changed; the record check below still decides)."""
    for listing in (n for n in hashes if n.startswith(RECORD_PREFIX) and n.endswith("SUMS")):
        algorithm = listing[len(RECORD_PREFIX):-len("SUMS")].lower()
        if algorithm not in {"sha384", "sha512"}:
            report.fail(listing, "not a hash list bidproc writes")
            continue
        listed = {}
        for line in _read(files, listing).decode("utf-8", "replace").splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
        actual = _digests(files, hashes, algorithm)
        for name in sorted(set(listed) | set(actual)):
            if name not in actual:
                report.fail(name, f"listed in {listing} but missing from the package")
            elif name not in listed:
                report.fail(name, f"not listed in {listing} (added after the hash-tree renewal)")
            elif listed[name] != actual[name]:
                report.fail(name, f"{algorithm.upper()} differs from {listing}, which the record's "
                                  f"{algorithm.upper()} chain covers (altered)")


def _check_manifest(data: bytes, hashes: dict[str, tuple[int, str, str]], report: Report) -> None:
    try:
        manifest: dict[str, Any] = json.loads(data)
        objects = {o["path"]: o for o in manifest["objects"]}
    except (ValueError, KeyError, TypeError) as exc:
        report.fail("manifest.json", f"unreadable: {exc}")
        return
    for name, entry in objects.items():
        if name not in hashes:
            report.fail(name, "listed in manifest.json but missing from the package")
            continue
        size, sha256, sha512 = hashes[name]
        if (entry.get("size"), entry.get("sha256"), entry.get("sha512")) != (size, sha256, sha512):
            report.fail(name, "size, SHA-256 or SHA-512 differs from manifest.json (altered)")
    for name in hashes:
        if name.startswith("objects/") and name not in objects:
            report.fail(name, "object not listed in manifest.json")


def _check_seal(content: bytes, p7s: bytes, roots: list[asn1_x509.Certificate],
                chain: list[asn1_x509.Certificate], when: datetime | None,
                tsa_roots: list[asn1_x509.Certificate] | None = None) -> str:
    """Why the detached CMS seal over ``content`` does not hold ('' when it does).

    With ``tsa_roots``, the seal must carry a signature timestamp that validates against them.
    """
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    if not roots:
        return "no root to check the seal against"
    try:
        info = cms.ContentInfo.load(p7s)
        signed_data = info["content"]
        if info["content_type"].native != "signed_data":
            return "not a CMS SignedData"
        # Checked at the time the package's timestamp proves, so an expired seal certificate does not
        # void an old package. A seal that embeds revocation data (the B-LT manifest seal) must be
        # covered by it, offline; packages sealed before the service PKI had a CRL carry none.
        crls, ocsps = _embedded_revocation(signed_data)
        mode = "require" if crls or ocsps else "soft-fail"
        context = ValidationContext(trust_roots=roots, other_certs=chain, allow_fetching=False, crls=crls,
                                    ocsps=ocsps, revocation_mode=mode, moment=when)
        ts_context = ValidationContext(trust_roots=tsa_roots, allow_fetching=False, crls=crls, ocsps=ocsps,
                                       revocation_mode=mode, moment=when) if tsa_roots else None
        status = asyncio.run(async_validate_detached_cms(content, signed_data, signer_validation_context=context,
                                                         ts_validation_context=ts_context))
    except Exception as exc:  # a malformed seal in any way means "does not hold"
        return f"seal unreadable: {exc}"
    if not status.intact:
        return "seal covers other content (altered)"
    if not status.valid:
        return "seal signature is not valid"
    if not status.trusted:
        return "seal certificate does not chain to the package's seal root"
    if tsa_roots is not None:
        stamp = status.timestamp_validity
        if stamp is None:
            return "seal has no signature timestamp"
        if not (stamp.intact and stamp.valid and stamp.trusted):
            return "seal's signature timestamp does not validate against the package's TSA root"
    return ""


def _embedded_revocation(signed_data: cms.SignedData) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
    """SignedData.crls: CRLs, and OCSP responses as RFC 5940 OtherRevocationInfoFormat."""
    crls: list[crl.CertificateList] = []
    ocsps: list[ocsp.OCSPResponse] = []
    for choice in [] if isinstance(signed_data["crls"], core.Void) else signed_data["crls"]:
        if choice.name == "crl":
            crls.append(choice.chosen)
        elif choice.chosen["other_rev_info_format"].native == "ocsp_response":
            ocsps.append(choice.chosen["other_rev_info"])
    return crls, ocsps


def _carries_revocation(p7s: bytes) -> bool:
    crls, ocsps = _embedded_revocation(cms.ContentInfo.load(p7s)["content"])
    return bool(crls or ocsps)
