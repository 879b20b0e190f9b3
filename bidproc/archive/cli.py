"""``bidproc evidence get|verify|renew|hold`` and ``bidproc export seda``.

Exit codes: 0 all good, 1 the package failed a check, 2 usage or environment error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path

from bidproc.cli import usage_error
from bidproc.errors import BidprocError


def evidence_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc evidence", description="Evidence packages of bids.")
    sub = parser.add_subparsers(dest="action", required=True)
    get = sub.add_parser("get", help="copy a bid's package out of the configured archive store")
    get.add_argument("bid")
    get.add_argument("-o", "--out", required=True, type=Path, help="a new directory, or a file ending in .zip")
    get.add_argument("--version", type=int, help="package version (default: the latest complete one)")
    again = sub.add_parser("renew", help="RFC 4998 records: create for new packages, renew those due")
    again.add_argument("--before-days", type=int, default=365,
                       help="renew a record whose newest timestamp's TSA certificate expires within this many days")
    again.add_argument("--force", action="store_true", help="renew every record now")
    again.add_argument("--hash-algorithm", choices=["sha256", "sha384", "sha512"],
                       help="hash algorithm of new records; records on a weaker one get a hash-tree renewal "
                            "(RFC 4998 §5.3). Default: archive.record_hash_algorithm")
    keep = sub.add_parser("retention", help="apply the retention rule once the contract dates are known")
    keep.add_argument("bid")
    keep.add_argument("--contract-signed", type=_date, help="date the contract was signed (YYYY-MM-DD)")
    keep.add_argument("--works", action="store_true", help="a works contract: 10 years from end of performance")
    keep.add_argument("--performance-end", type=_date, help="end of performance of a works contract")
    hold = sub.add_parser("hold", help="set or lift a legal hold on every object of a bid's packages")
    hold.add_argument("bid")
    hold.add_argument("state", choices=["on", "off"])
    check = sub.add_parser("verify", help="check a package offline (directory or ZIP)")
    check.add_argument("path", type=Path)
    check.add_argument("--root-sha256", action="append", default=[],
                       help="SHA-256 of the one root both the seal and TSA chains must end in (bidproc's "
                            "local PKI), as published at /v1/seal/certificates and /v1/timestamping/certificates")
    check.add_argument("--seal-root-sha256", action="append",
                       help="SHA-256 of a root the seal chain must end in (repeatable; /v1/seal/certificates)")
    check.add_argument("--tsa-root-sha256", action="append",
                       help="SHA-256 of a root the TSA chain must end in (repeatable; /v1/timestamping/certificates)")
    check.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    if args.action == "verify":
        roots, seal, tsa = (None if r is None else frozenset(x.lower().replace(":", "") for x in r)
                            for r in (args.root_sha256, args.seal_root_sha256, args.tsa_root_sha256))
        if roots and len(roots) > 1 and (seal is None or tsa is None):
            # A root pinned for both roles lets the TSA's CA (which may sell signing certificates) seal.
            return usage_error("bidproc evidence", "several --root-sha256 without a role: give the seal's "
                                                   "with --seal-root-sha256 and the TSA's with --tsa-root-sha256")
        return _verify(args.path, roots or frozenset(), seal, tsa, args.format)
    if args.action == "renew":
        return _renew(args.before_days, args.force, args.hash_algorithm)
    if args.action == "retention":
        return _retention(args.bid, args.contract_signed, args.works, args.performance_end)
    if args.action == "hold":
        return _hold(args.bid, args.state == "on")
    return _get(args.bid, args.out, args.version)


def _renew(before_days: int, force: bool, algorithm: str | None) -> int:
    from datetime import timedelta

    from bidproc.archive.evidence import record_stamper
    from bidproc.archive.opened import sweep_opened
    from bidproc.archive.renewal import renew_all
    from bidproc.archive.worm import open_archive
    from bidproc.config import load_settings
    from bidproc.runtime import Runtime

    try:
        rt = Runtime(load_settings())
        opened = sweep_opened(rt)  # first, so that the versions it adds get their records now
        summary = renew_all(open_archive(rt.settings), record_stamper(rt), rt.clock(), timedelta(days=before_days),
                            force, algorithm or rt.settings.archive.record_hash_algorithm)
    except BidprocError as exc:
        return usage_error("bidproc evidence", exc)
    print(json.dumps({"opened": opened, "created": summary.created, "renewed": summary.renewed,
                      "rehashed": summary.rehashed}, indent=2))
    return 0


def _date(text: str) -> date:
    return date.fromisoformat(text)


def _retention(bid: str, signed: date | None, works: bool, performance_end: date | None) -> int:
    from bidproc.archive.evidence import extend_retention, locate
    from bidproc.archive.retention import ContractKind, RetentionPolicy
    from bidproc.archive.worm import open_archive
    from bidproc.config import load_settings
    from bidproc.journal.chain import append
    from bidproc.metadata.models import ReceiptRow
    from bidproc.runtime import Runtime

    policy = RetentionPolicy(ContractKind.WORKS if works else ContractKind.SUPPLIES_SERVICES, signed, performance_end)
    try:
        rt = Runtime(load_settings())
        prefix = locate(rt, bid)
        with rt.db.session() as s:
            receipt = s.get(ReceiptRow, bid)
            assert receipt is not None, "a located bid with packages has a receipt"
            received = datetime.fromisoformat(json.loads(receipt.body)["received_at"])
        until, rule = policy.retain_until(received, rt.settings.archive)
        extended, kept = extend_retention(open_archive(rt.settings), prefix, until)
        with rt.db.session() as s:
            append(s, actor="cli", action="evidence.retention", subject=bid, now=rt.clock(),
                   detail={"until": until.isoformat(), "rule": rule, "extended": extended, "kept": kept})
    except BidprocError as exc:
        return usage_error("bidproc evidence", exc)
    print(f"{rule}: until {until.isoformat()}; {extended} objects extended, {kept} already locked longer "
          f"(retention is never shortened)")
    return 0


def _hold(bid: str, on: bool) -> int:
    from bidproc.archive.evidence import locate
    from bidproc.archive.worm import open_archive
    from bidproc.config import load_settings
    from bidproc.journal.chain import append
    from bidproc.runtime import Runtime

    try:
        rt = Runtime(load_settings())
        prefix = locate(rt, bid)
        archive = open_archive(rt.settings)
        keys = list(archive.keys(prefix + "/evidence/"))
        for key in keys:
            archive.set_legal_hold(key, on)
        with rt.db.session() as s:
            append(s, actor="cli", action="evidence.legal_hold", subject=bid, now=rt.clock(),
                   detail={"on": on, "objects": len(keys)})
    except BidprocError as exc:
        return usage_error("bidproc evidence", exc)
    print(f"legal hold {'on' if on else 'off'}: {len(keys)} objects ({archive.description})")
    return 0


def _verify(path: Path, roots: frozenset[str], seal: frozenset[str] | None, tsa: frozenset[str] | None,
            fmt: str) -> int:
    from bidproc.archive.verify import verify_package

    if not path.exists():
        return usage_error("bidproc evidence", f"{path} does not exist")
    report = verify_package(path, roots, seal_roots=seal, tsa_roots=tsa)
    pinned = bool(roots or seal or tsa)
    if fmt == "json":
        print(json.dumps({"ok": report.ok, "roots_pinned": pinned,
                          "failures": [{"file": f, "reason": r} for f, r in report.failures],
                          "notes": report.notes, "root_sha256": report.roots}, indent=2))
    else:
        for name, why in report.failures:
            print(f"FAILED {name}: {why}")
        for note in report.notes:
            print(note)
        for chain, fingerprints in report.roots.items():
            print(f"{chain} root SHA-256: {', '.join(fingerprints) or '-'}")
        if not pinned:
            print("Compare these root fingerprints with the ones the service publishes "
                  "(/v1/seal/certificates, /v1/timestamping/certificates, the operator's documentation).")
        if not report.ok:
            print(f"Verification: FAILED ({len(report.failures)} problems)")
        elif pinned:
            print("Verification: OK")
        else:
            # The package carries its own chains: a package forged whole, with the forger's own roots, is
            # consistent too. Without a pinned root only the comparison above says who sealed it.
            print("Verification: OK (integrity only: no root was pinned, so who sealed and timestamped it rests"
                  " on the fingerprints above; pin them with --seal-root-sha256 and --tsa-root-sha256)")
    return 0 if report.ok else 1


def _get(bid: str, out: Path, version: int | None) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from bidproc.archive.evidence import locate
    from bidproc.archive.retrieve import fetch
    from bidproc.archive.worm import open_archive
    from bidproc.config import load_settings
    from bidproc.runtime import Runtime

    try:
        rt = Runtime(load_settings())
        prefix = locate(rt, bid)
        with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      disable=not sys.stderr.isatty(), console=None, transient=True) as bar:
            task = bar.add_task(f"evidence {bid}", total=None)
            names = fetch(open_archive(rt.settings), prefix, out, version,
                          progress=lambda _name, n: bar.advance(task, n))
    except (BidprocError, FileExistsError) as exc:
        return usage_error("bidproc evidence", exc)
    print(f"{len(names)} files written to {out}")
    return 0


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bidproc export", description="Export to an archive system.")
    sub = parser.add_subparsers(dest="format", required=True)
    seda = sub.add_parser("seda", help="a tender's evidence packages as a SEDA 2.2 ArchiveTransfer ZIP")
    seda.add_argument("--tender", required=True, help="tender id")
    seda.add_argument("-o", "--out", required=True, type=Path, help="the ZIP to write (must not exist)")
    seda.add_argument("--archival-agency", default="ARCHIVES", help="identifier of the archive service")
    seda.add_argument("--transferring-agency", default="BIDPROC", help="identifier of the transferring service")
    seda.add_argument("--originating-agency", help="identifier of the producer (default: the tender's buyer)")
    seda.add_argument("--schemas", type=Path, help="directory with catalog.xml and seda-2.2/: validate first")
    seda.add_argument("--awarded", action="append", default=[], metavar="BID",
                      help="a bid awarded the contract (repeatable): the others get FinalAction Destroy; "
                           "without it, every bid gets Keep")
    args = parser.parse_args(argv)
    from sqlalchemy import select

    from bidproc.archive import seda as seda_export
    from bidproc.archive.retention import policy_of
    from bidproc.archive.store import bid_prefix
    from bidproc.archive.worm import open_archive
    from bidproc.config import load_settings
    from bidproc.metadata.models import BidRow, TenderRow
    from bidproc.runtime import Runtime

    try:
        rt = Runtime(load_settings())
        with rt.db.session() as s:
            tender = s.get(TenderRow, args.tender)
            if tender is None:
                return usage_error("bidproc export", f"no tender {args.tender}")
            info = {"id": tender.id, "reference": tender.reference, "title": tender.title}
            originating = args.originating_agency or tender.buyer
            bids = {b.id: bid_prefix(tender.id, b.id)
                    for b in s.execute(select(BidRow).where(BidRow.tender_id == tender.id)).scalars()}
            appraisal = seda_export.AppraisalPolicy(policy_of(tender.contract), rt.settings.archive,
                                                    frozenset(args.awarded))
        if unknown := sorted(set(args.awarded) - set(bids)):
            return usage_error("bidproc export", f"not bids of tender {args.tender}: {', '.join(unknown)}")
        count = seda_export.export_tender(
            open_archive(rt.settings), info, bids, args.out, now=rt.clock(),
            archival=seda_export.Agency(args.archival_agency),
            transferring=seda_export.Agency(args.transferring_agency),
            originating=seda_export.Agency(originating), appraisal=appraisal)
    except (BidprocError, FileExistsError) as exc:
        return usage_error("bidproc export", exc)
    if args.schemas:
        import zipfile

        errors = seda_export.validate(zipfile.ZipFile(args.out).read("manifest.xml"), args.schemas)
        for error in errors:
            print(f"INVALID {error}")
        if errors:
            return 1
    print(f"{count} bids of tender {info['reference']} written to {args.out}")
    return 0
