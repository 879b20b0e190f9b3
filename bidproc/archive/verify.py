"""Check an evidence package offline (a directory or a ZIP of the same layout), naming what fails.

Every hash in SHA256SUMS and in manifest.json (SHA-256 and SHA-512), both seals (pyhanko's CMS
validation against the roots of ``certs/seal-chain.pem``, at the time of the package's timestamp),
the RFC 3161 timestamp over SHA256SUMS (against ``certs/tsa-chain.pem``), and files nobody listed.
The chains shipped in the package prove nothing by themselves (a forger ships their own): the roots'
SHA-256 fingerprints are reported, and compared with expected ones when given, one set per role (a
root trusted for both roles would let a TSA's CA, which may sell signing certificates, seal packages).
Every file is hostile input: a malformed one is a named failure, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, core, crl, ocsp, pem
from asn1crypto import x509 as asn1_x509

from bidproc.archive.package import PROOFS
from bidproc.archive.package_reader import PackageFiles, open_package
from bidproc.errors import BidprocError
from bidproc.timestamps.verify import verify_response

RECORD = "evidence-record.ers"  # optional: the RFC 4998 record of the package, added by `evidence get`
RECORD_PREFIX = "evidence-record."  # the record and the SHA512SUMS-style lists its later chains cover
RECORD_FILES = (RECORD, f"{RECORD_PREFIX}SHA384SUMS", f"{RECORD_PREFIX}SHA512SUMS")  # all `evidence get` adds
CHAINS = ("certs/seal-chain.pem", "certs/tsa-chain.pem")
REQUIRED = ("manifest.json", "manifest.json.p7s", "certs/seal-chain.pem", "certs/tsa-chain.pem", *PROOFS)
MAX_READ_WHOLE = 64 << 20  # manifest, sums, chains, seals, tokens, record: read whole, so bounded
SUMS_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


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


def verify_package(path: Path, expected_roots: frozenset[str] = frozenset(), *,
                   seal_roots: frozenset[str] | None = None, tsa_roots: frozenset[str] | None = None) -> Report:
    """Check everything against pinned roots (SHA-256 hex of root certificates), if any: ``seal_roots``
    for the seals, ``tsa_roots`` for the timestamps; ``expected_roots`` pins one root for both roles
    (one PKI for seal and TSA, bidproc's local one). Several roots there fail: which role is whose?"""
    report = Report()
    try:
        files = open_package(path)
        names = files.names()
    except (OSError, EOFError, ValueError, NotImplementedError, zipfile.BadZipFile) as exc:
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
    hashes = _all_hashes(files, names, report)
    if not report.ok:
        return report
    for name in (*REQUIRED, *(n for n in names if n.startswith(RECORD_PREFIX))):
        if name in hashes and hashes[name][0] > MAX_READ_WHOLE:
            report.fail(name, f"larger than {MAX_READ_WHOLE} bytes: not a file bidproc writes")
    if not report.ok:
        return report
    _check_record_files(present, report)
    sums = _read(files, "SHA256SUMS")
    _check_sums(sums, hashes, report)
    pins = _pins(expected_roots, seal_roots, tsa_roots, report)
    chains: dict[str, list[asn1_x509.Certificate]] = {}
    anchors: dict[str, list[asn1_x509.Certificate]] = {}
    for name in CHAINS:
        chains[name], roots = _chain(_read(files, name), name, report)
        report.roots[name] = list(roots)
        # With pinned roots only those are trusted: `-CAfile` (and pyhanko) trust every root in a file,
        # so a forger's root next to a copy of the genuine one must not count.
        pinned = pins[name]
        anchors[name] = [c for fp, c in roots.items() if pinned is None or fp in pinned]
        if not roots:
            report.fail(name, "holds no root (self-signed) certificate")
        elif pinned and set(roots) - pinned:
            report.fail(name, "holds a root that is not one of the expected roots (a chain of someone else's)")
        elif pinned is not None and not anchors[name]:
            report.fail(name, "its root is not one of the expected roots (a chain of someone else's)")
    seal_certs = chains["certs/seal-chain.pem"]
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


def _all_hashes(files: PackageFiles, names: list[str], report: Report) -> dict[str, tuple[int, str, str]]:
    """Every file's size and digests; a file that cannot be read (a ZIP entry failing its CRC, an
    unsupported or encrypted entry, a file we may not open) is named, not raised."""
    hashes = {}
    for name in names:
        try:
            hashes[name] = _hashes(files, name)
        except (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
            report.fail(name, f"cannot be read: {exc}")
    return hashes


def _check_record_files(present: set[str], report: Report) -> None:
    """Files named like the record's are outside SHA256SUMS, so only the exact ones `evidence get` adds
    may be there: anything else under that prefix would ride along unchecked."""
    for name in sorted(present):
        if name.startswith(RECORD_PREFIX) and name not in RECORD_FILES:
            report.fail(name, "not a file bidproc writes (added after sealing)")
        elif name in RECORD_FILES[1:] and RECORD not in present:
            report.fail(name, f"a hash list without the evidence record that covers it ({RECORD} is missing)")


def _pins(expected: frozenset[str], seal: frozenset[str] | None, tsa: frozenset[str] | None,
          report: Report) -> dict[str, frozenset[str] | None]:
    """The roots each chain file may end in (None: nothing pinned, the package's own roots are used)."""
    pins: dict[str, frozenset[str] | None] = {}
    for name, own in zip(CHAINS, (seal, tsa), strict=True):
        if own is not None:
            pins[name] = own
        elif len(expected) > 1:  # a TSA root pinned this way would also be trusted for seals
            report.fail(name, "several roots pinned without a role: pin the seal's and the TSA's apart")
            pins[name] = frozenset()
        else:
            pins[name] = expected or None
    return pins


def _chain(data: bytes, name: str, report: Report) -> tuple[list[asn1_x509.Certificate],
                                                            dict[str, asn1_x509.Certificate]]:
    """The file's certificates and its roots by SHA-256; nothing (and a failure) if it does not parse."""
    try:
        certs = _certs(data)
        return certs, {hashlib.sha256(c.dump()).hexdigest(): c for c in _roots(certs)}
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto parses lazily: any access may raise
        report.fail(name, f"unreadable certificate file: {exc}")
        return [], {}


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
    covered = _record_algorithms(_read(files, RECORD))
    for listing in (n for n in hashes if n.startswith(RECORD_PREFIX) and n.endswith("SUMS")):
        algorithm = listing[len(RECORD_PREFIX):-len("SUMS")].lower()
        if algorithm not in {"sha384", "sha512"}:
            report.fail(listing, "not a hash list bidproc writes")
            continue
        if algorithm not in covered:  # a list no chain of the record covers proves nothing: added
            report.fail(listing, f"no chain of {RECORD} uses {algorithm.upper()}: a list nothing covers")
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on a repeated key (Python keeps the last, others the first): refuse, not choose.
    if twice := sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1):
        raise ValueError(f"key {twice[0]!r} twice in one object")
    return dict(pairs)


def _record_algorithms(record: bytes) -> set[str]:
    from bidproc.archive.records import EvidenceRecord, chain_algorithm

    try:
        return {chain_algorithm(chain) for chain in EvidenceRecord.load(record)["archive_time_stamp_sequence"]}
    except Exception:  # a malformed record covers nothing (and fails its own check below)
        return set()


def _check_manifest(data: bytes, hashes: dict[str, tuple[int, str, str]], report: Report) -> None:
    try:
        manifest: dict[str, Any] = json.loads(data, object_pairs_hook=_unique_keys)
        paths = [o["path"] for o in manifest["objects"]]
        objects = dict(zip(paths, manifest["objects"], strict=True))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: nesting too deep
        report.fail("manifest.json", f"unreadable: {exc}")
        return
    if twice := [p for p, n in Counter(paths).items() if n > 1]:
        report.fail("manifest.json", f"lists {twice[0]} twice")
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
