"""The manifest seal is CAdES B-LT: its revocation data is embedded, so it validates offline years later."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import serialization

from bidproc.archive.retrieve import fetch
from bidproc.archive.seal import Revocation, Sealer
from bidproc.archive.verify import verify_package
from bidproc.archive.worm import open_archive
from bidproc.runtime import Runtime
from bidproc.signature.cades.ltv import _signed_data_revinfo
from bidproc.signature.cli import main as verify_main
from bidproc.timestamps.localca import load_or_create
from bidproc.timestamps.tsa import LocalTSA
from tests.archive.bids import ArchivedBid, archived_bid, local_settings, now
from tests.pki import TestPKI
from tests.pki.fixtures import pki  # noqa: F401  (the test PKI: remote TSA, CRLs, OCSP over loopback)
from tests.signature.signing import fetch_ocsp


def _verify(capsys: pytest.CaptureFixture[str], pkg: Path, *anchors: Path) -> dict[str, object]:
    """`bidproc verify manifest.json.p7s --detached-data manifest.json --offline --trust-anchor ...`"""
    argv = [str(pkg / "manifest.json.p7s"), "--detached-data", str(pkg / "manifest.json"), "--offline"]
    for anchor in anchors:
        argv += ["--trust-anchor", str(anchor)]
    capsys.readouterr()
    code = verify_main(argv)
    signature = json.loads(capsys.readouterr().out)["signatures"][0]
    assert (code == 0) == (signature["indication"] == "TOTAL_PASSED")
    return dict(signature)


def _package(bid: ArchivedBid, out: Path) -> Path:
    fetch(open_archive(bid.rt.settings), bid.prefix, out)
    return out


def test_manifest_seal_is_b_lt_and_passes_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bid = archived_bid(Runtime(local_settings(tmp_path)))
    pkg = _package(bid, tmp_path / "pkg")
    root = tmp_path / "data" / "keys" / "local-ca" / "root.pem"
    signature = _verify(capsys, pkg, root)
    assert (signature["level"], signature["indication"]) == ("B-LT", "TOTAL_PASSED")
    assert "B-LT seal" in " ".join(json.loads((pkg / "manifest.json").read_text())["gaps"])
    report = verify_package(pkg)
    assert report.ok and "manifest.json.p7s: CAdES B-LT, revocation data embedded and checked" in report.notes
    # The same seal without its revocation data: B-T, and offline it cannot pass (the test can fail).
    info = cms.ContentInfo.load((pkg / "manifest.json.p7s").read_bytes())
    del info["content"]["crls"]
    (pkg / "manifest.json.p7s").write_bytes(info.dump(force=True))
    bare = _verify(capsys, pkg, root)
    assert bare["level"] == "B-T" and bare["indication"] != "TOTAL_PASSED"
    # openssl still reads the B-LT seal as plain CMS (revocation data is outside what it signs).
    fresh = _package(bid, tmp_path / "again")
    assert subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "manifest.json.p7s",
                           "-content", "manifest.json", "-CAfile", "certs/seal-chain.pem", "-purpose", "any",
                           "-out", "/dev/null"], cwd=fresh, capture_output=True).returncode == 0


def test_a_remote_tsa_gets_its_revocation_data_fetched(tmp_path: Path, pki: TestPKI,  # noqa: F811
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """With a configured TSA of another PKI, its certificate's CRL (from its distribution point) is embedded
    beside the local seal's: B-LT offline against both roots, and the package verifies."""
    tsa_root = tmp_path / "tsa-root.pem"
    tsa_root.write_bytes(_pem(pki.root_der))
    rt = Runtime(local_settings(tmp_path, BIDPROC_TIMESTAMPING_TSA_URL=pki.tsa_url,
                                BIDPROC_TIMESTAMPING_TSA_ROOTS=str(tsa_root)))
    assert not isinstance(rt.tsa, LocalTSA)
    pkg = _package(archived_bid(rt), tmp_path / "pkg")
    signed = cms.ContentInfo.load((pkg / "manifest.json.p7s").read_bytes())["content"]
    issuers = {c.chosen["tbs_cert_list"]["issuer"].human_friendly for c in signed["crls"]}
    assert any("bidproc Test Root CA" in i for i in issuers) and any("local root CA" in i for i in issuers)
    signature = _verify(capsys, pkg, tmp_path / "data" / "keys" / "local-ca" / "root.pem", tsa_root)
    assert (signature["level"], signature["indication"]) == ("B-LT", "TOTAL_PASSED")
    assert verify_package(pkg).ok


def test_ocsp_responses_are_embedded_as_rfc_5940_other_revocation_info(tmp_path: Path,
                                                                       pki: TestPKI) -> None:  # noqa: F811
    """An OCSP response goes into SignedData.crls as OtherRevocationInfoFormat (id-ri-ocsp-response) and
    reads back as the same response, as the CAdES validator reads it."""
    local = load_or_create(tmp_path / "ca", now())
    response = fetch_ocsp(pki, "signer", now())
    assert local.crl is not None
    sealed = Sealer.from_local_pki(local).seal(
        b"data", timestamp=lambda d: LocalTSA(local).timestamp(d, now()).response_der,
        revocation=lambda certs: Revocation(crls=(local.crl or b"",), ocsps=(response,)))
    signed = cms.ContentInfo.load(sealed)["content"]
    other = [c.chosen for c in signed["crls"] if c.name == "other"]
    assert [o["other_rev_info_format"].dotted for o in other] == ["1.3.6.1.5.5.7.16.2"]
    assert other[0]["other_rev_info"].dump() == response
    crls, ocsps = _signed_data_revinfo(signed)
    assert len(crls) == 1 and len(ocsps) == 1
    # The TSA token's certificates are copied up beside the seal's: three distinct certificates.
    subjects = {c.chosen.subject.human_friendly for c in signed["certificates"]}
    assert len(subjects) == 3 and any("local TSA" in s for s in subjects)


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
