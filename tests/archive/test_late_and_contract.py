"""Late bids get a package; the buyer's contract dates give the tender's packages their retention."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bidproc.archive.contract import ContractDesk
from bidproc.archive.evidence import archive_bid
from bidproc.archive.package import versions
from bidproc.archive.retention import ContractKind, RetentionPolicy
from bidproc.archive.retrieve import fetch
from bidproc.archive.store import bid_prefix
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import ArchiveStore, open_archive
from bidproc.config import ClamdSettings
from bidproc.desk.tenants import Caller, Role
from bidproc.errors import BidprocError, Code
from bidproc.metadata.models import ReceiptRow, TenderRow
from bidproc.runtime import Runtime
from tests.archive.bids import archived_bid, local_settings
from tests.foundation.stack import Stack, stack_fixture
from tests.opening.helpers import client, deposit, journal, tender


@pytest.fixture
def stack(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings, redis_url: str,
          postgres_url: str) -> Iterator[Stack]:
    yield from stack_fixture(tmp_path, s3_endpoint, clamd_settings, redis_url, postgres_url)


def _locks(archive: ArchiveStore, prefix: str) -> set[datetime | None]:
    return {archive.lock(k).retain_until for k in archive.keys(prefix + "/evidence/")}


def _years_after(day: date, years: int) -> datetime:
    return datetime(day.year + years, day.month, day.day, tzinfo=UTC)


def test_late_bid_package_and_contract_dates_extend_retention(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    platform, buyer = client(stack, "ville", "platform"), client(stack, "ville", "buyer")
    t = tender(stack, platform)
    on_time = deposit(platform, t["id"], {"offre.txt": b"offre dans les temps\n"})
    late = deposit(platform, t["id"], {"offre.txt": b"offre en retard\n"}, submit=False)
    assert stack.wait_status(platform, on_time)["status"] == "processed"
    stack.clock.offset = timedelta(hours=1, seconds=1)
    assert platform.post(f"/v1/bids/{late}/submit").status_code == 409  # received late: kept apart

    archive = open_archive(stack.settings)
    late_prefix, on_time_prefix = bid_prefix(t["id"], late), bid_prefix(t["id"], on_time)
    end = time.monotonic() + 90
    while time.monotonic() < end and not versions(archive, late_prefix).get(1):
        time.sleep(0.3)
    assert versions(archive, late_prefix) == {1: True}, stack.worker_logs()
    pkg = tmp_path / "late"
    fetch(archive, late_prefix, pkg)
    assert verify_package(pkg).ok
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["on_time"] is False and manifest["retention"]["rule"].startswith("default")
    roles = {o["role"] for o in manifest["objects"]}
    assert {"sealed-original", "deposit-receipt", "deposit-receipt-timestamp", "journal-extract"} <= roles
    assert "original" not in roles  # sealed before it was archived: the service keeps no key to it
    default_locks = _locks(archive, on_time_prefix)
    assert len(default_locks) == 1

    # Works: 10 years from the end of performance, later than the default: every object is extended.
    end_of_works = (stack.clock() + timedelta(days=365 * 8)).date()
    contract = {"kind": "works", "signed": stack.clock().date().isoformat(),
                "performance_end": end_of_works.isoformat()}
    r = buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": contract})
    assert r.status_code == 200 and r.json()["contract"] == contract, r.text
    for prefix in (late_prefix, on_time_prefix):
        assert _locks(archive, prefix) == {_years_after(end_of_works, 10)}
    assert journal(stack, "tender.contract.set", t["id"])[0].detail["new"] == contract
    assert journal(stack, "evidence.retention", t["id"])[0].detail["bids"][late]["extended"] > 0

    # A shorter rule afterwards (supplies, 5 years from a signature today) shortens nothing.
    shorter = {"kind": "supplies_services", "signed": stack.clock().date().isoformat(), "performance_end": None}
    assert buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": shorter}).status_code == 200
    assert _locks(archive, on_time_prefix) == {_years_after(end_of_works, 10)}

    # Refused: an end of performance outside works, a misspelt field, the platform's key.
    wrong = buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": {"performance_end": "2030-01-01"}})
    assert wrong.status_code == 400 and wrong.json()["code"] == "request.invalid"
    assert buyer.patch(f"/v1/tenders/{t['id']}", json={"contract": {"signd": "2030-01-01"}}).status_code >= 400
    forbidden = platform.patch(f"/v1/tenders/{t['id']}", json={"contract": contract})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "auth.forbidden_role"


def test_new_versions_take_the_tenders_contract_dates(tmp_path: Path) -> None:
    """Without a stack: the dates stored by the desk give the next package version its retention date."""
    bid = archived_bid(Runtime(local_settings(tmp_path)))
    rt = bid.rt
    with rt.db.session() as s:
        tender_row = s.get(TenderRow, bid.tender_id)
        receipt = s.get(ReceiptRow, bid.bid_id)
        assert tender_row is not None and receipt is not None
        tenant, body = tender_row.tenant_id, receipt.body
    caller = Caller(tenant, Role.BUYER, "k1")
    signed = rt.clock().date() + timedelta(days=30)
    with pytest.raises(BidprocError) as stranger:  # another tenant's tender is not found
        ContractDesk(rt).set_contract(Caller("other", Role.BUYER, "k2"), bid.tender_id, RetentionPolicy())
    assert stranger.value.code is Code.TENDER_NOT_FOUND
    ContractDesk(rt).set_contract(caller, bid.tender_id, RetentionPolicy(ContractKind.SUPPLIES_SERVICES, signed))
    written = archive_bid(rt, bid.tender_id, bid.bid_id, body, new_version=True)
    assert written.version == 2
    assert written.manifest["retention"]["until"] == _years_after(signed, 5).isoformat()
    assert written.manifest["retention"]["rule"].startswith("bids: 5 years from contract signature")
    with pytest.raises(BidprocError) as bad:
        ContractDesk(rt).set_contract(caller, bid.tender_id, RetentionPolicy(
            ContractKind.WORKS, signed, signed - timedelta(days=1)))
    assert bad.value.code is Code.REQUEST_INVALID
