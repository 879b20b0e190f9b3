"""SEDA 2.2 export: valid against the schema (offline), digests and sizes of the ZIP's files, appraisal rule."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from bidproc.archive.contract import ContractDesk
from bidproc.archive.retention import ContractKind, RetentionPolicy, policy_of
from bidproc.archive.seda import NS, Agency, AppraisalPolicy, export_tender, validate
from bidproc.archive.worm import open_archive
from bidproc.desk.tenants import Caller, Role
from bidproc.metadata.models import TenderRow
from bidproc.runtime import Runtime
from tests.archive.bids import archived_bid, local_settings
from tests.services import ROOT, SHARED

SCHEMAS = SHARED / "schemas"
Q = f"{{{NS}}}"


@pytest.fixture(scope="module")
def transfer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("seda")
    rt = Runtime(local_settings(tmp))
    first = archived_bid(rt)
    second = archived_bid(rt, {"offre-b.pdf": b"%PDF-1.7 b"}, reference="T-1b")
    # The second bid belongs to another tender: it must not appear in the first tender's transfer.
    env = {**os.environ, "BIDPROC_SERVICE_DATA_DIR": str(tmp / "data"),
           "BIDPROC_SERVICE_SERVICE_KEY": rt.settings.service.service_key}
    renewed = subprocess.run([sys.executable, "-m", "bidproc.cli", "evidence", "renew"], env=env, cwd=tmp,
                             capture_output=True, text=True)
    assert renewed.returncode == 0 and first.prefix in renewed.stdout, renewed.stderr
    out = tmp / "transfer.zip"
    done = subprocess.run([sys.executable, "-m", "bidproc.cli", "export", "seda", "--tender", first.tender_id,
                           "-o", str(out), "--schemas", str(SCHEMAS)], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 bids" in done.stdout
    return out, [first.bid_id, second.bid_id]


def test_transfer_is_valid_seda_and_lists_every_file(transfer: tuple[Path, list[str]]) -> None:
    out, (bid, other) = transfer
    zf = zipfile.ZipFile(out)
    document = zf.read("manifest.xml")
    assert validate(document, SCHEMAS) == []
    root = etree.fromstring(document)
    objects = root.findall(f".//{Q}BinaryDataObject")
    uris = {o.findtext(f"{Q}Uri") for o in objects}
    assert uris == {n for n in zf.namelist() if n != "manifest.xml"}
    assert all(u.startswith(f"content/{bid}/") for u in uris) and not any(other in u for u in uris)
    assert f"content/{bid}/SHA256SUMS.tsr" in uris and f"content/{bid}/evidence-record.ers" in uris
    for obj in objects:
        data = zf.read(str(obj.findtext(f"{Q}Uri")))
        digest = obj.find(f"{Q}MessageDigest")
        assert digest is not None and digest.get("algorithm") == "SHA-512"
        assert digest.text == hashlib.sha512(data).hexdigest()
        assert obj.findtext(f"{Q}Size") == str(len(data))
    ids = {o.get("id") for o in objects}
    referenced = {r.text for r in root.iter(f"{Q}DataObjectReferenceId")}
    assert referenced == ids
    rule = root.find(f".//{Q}AppraisalRule")
    assert rule is not None and rule.findtext(f"{Q}Rule") == "BIDPROC-DEFAULT-15Y"
    assert rule.findtext(f"{Q}FinalAction") == "Keep"


def _without(document: bytes, tag: str) -> bytes:
    root = etree.fromstring(document)
    node = root.find(f".//{Q}{tag}")
    assert node is not None
    node.getparent().remove(node)
    return bytes(etree.tostring(root))


def test_the_validator_rejects_broken_messages(transfer: tuple[Path, list[str]]) -> None:
    document = zipfile.ZipFile(transfer[0]).read("manifest.xml")
    for tag in ("MessageIdentifier", "Content", "ArchivalAgency", "CodeListVersions"):
        assert validate(_without(document, tag), SCHEMAS), tag
    sized = document.replace(b"<Size>", b"<Size>-", 1)
    assert validate(sized, SCHEMAS)
    swapped = document.replace(b"<FinalAction>Keep</FinalAction>", b"<FinalAction>Burn</FinalAction>", 1)
    assert validate(swapped, SCHEMAS)


def _rule(document: bytes) -> tuple[str | None, str | None, str | None]:
    rule = etree.fromstring(document).find(f".//{Q}AppraisalRule")
    assert rule is not None
    return rule.findtext(f"{Q}Rule"), rule.findtext(f"{Q}StartDate"), rule.findtext(f"{Q}FinalAction")


def test_the_appraisal_rule_follows_the_tenders_contract_and_the_award(tmp_path: Path) -> None:
    """Rule and start date from the contract dates set after archiving (not the package's frozen default);
    the awarded bid Keep, an unsuccessful one Destroy, each message still valid SEDA 2.2."""
    bid = archived_bid(Runtime(local_settings(tmp_path)))
    rt = bid.rt
    with rt.db.session() as s:
        row = s.get(TenderRow, bid.tender_id)
        assert row is not None
        caller, info = Caller(row.tenant_id, Role.BUYER, "k1"), {"id": row.id, "reference": row.reference,
                                                                  "title": row.title}
    signed = date(2027, 3, 1)
    ContractDesk(rt).set_contract(caller, bid.tender_id, RetentionPolicy(ContractKind.SUPPLIES_SERVICES, signed))
    env = {**os.environ, "BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "data"),
           "BIDPROC_SERVICE_SERVICE_KEY": rt.settings.service.service_key}

    def export(out: Path, *awarded: str) -> subprocess.CompletedProcess[str]:
        argv = ["export", "seda", "--tender", bid.tender_id, "-o", str(out), "--schemas", str(SCHEMAS)]
        for a in awarded:
            argv += ["--awarded", a]
        return subprocess.run([sys.executable, "-m", "bidproc.cli", *argv], env=env, cwd=ROOT,
                              capture_output=True, text=True)

    won = export(tmp_path / "won.zip", bid.bid_id)
    assert won.returncode == 0, won.stdout + won.stderr
    assert _rule(zipfile.ZipFile(tmp_path / "won.zip").read("manifest.xml")) == ("BIDPROC-BIDS-5Y", "2027-03-01",
                                                                                 "Keep")
    stranger = export(tmp_path / "stranger.zip", "no-such-bid")
    assert stranger.returncode != 0 and "no-such-bid" in stranger.stdout + stranger.stderr
    # Another bid won: this one is an unsuccessful offer, destroyed at the end of its DUA.
    archive = open_archive(rt.settings)
    for policy, awarded, expected in (
            (policy_of({"kind": "supplies_services", "signed": "2027-03-01"}), {"another-bid"},
             ("BIDPROC-BIDS-5Y", "2027-03-01", "Destroy")),
            (RetentionPolicy(ContractKind.WORKS, signed, date(2029, 6, 30)), set(),
             ("BIDPROC-WORKS-10Y", "2029-06-30", "Keep"))):
        out = tmp_path / f"{expected[2]}.zip"
        appraisal = AppraisalPolicy(policy, rt.settings.archive, frozenset(awarded))
        assert export_tender(archive, info, {bid.bid_id: bid.prefix}, out, archival=Agency("A"),
                             transferring=Agency("T"), originating=Agency("O"), now=rt.clock(),
                             appraisal=appraisal) == 1
        document = zipfile.ZipFile(out).read("manifest.xml")
        assert _rule(document) == expected and validate(document, SCHEMAS) == []
