"""CAdES B-LTA: archive-time-stamp-v3 (ETSI EN 319 122-1 §5.5.2-5.5.3) verified, and refused when what
it covers changed.

pyhanko does not make CAdES archive timestamps, so the signer side is written here, independently of
``bidproc.signature.cades.archive`` (its own encoding of the ATSHashIndexV3 and of the imprint input),
with the token from the test PKI's live RFC 3161 TSA.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import aiohttp
import pytest
from asn1crypto import algos, cms, core
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication, Level, SignatureReport
from bidproc.signature.validate import validate_file, validate_files
from tests.pki import TestPKI
from tests.signature.signing import add_revocation_values, fetch_crl, fetch_ocsp, sign_cms
from tests.signature.test_cades_multi import co_sign

BID = b"Acte d'engagement signe: lot 1, 250 000 EUR HT"
ATS_V3 = "0.4.0.1733.2.4"  # id-aa-ets-archiveTimestampV3
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"  # id-aa-ATSHashIndex-v3
NOT_VALIDATED = "cades.archive_timestamp_not_validated"


class _Hashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.OctetString


class _IndexV3(core.Sequence):  # type: ignore[misc]  # ATSHashIndexV3, hashIndAlgorithm always present
    _fields = [  # noqa: RUF012
        ("hash_ind_algorithm", algos.DigestAlgorithm),
        ("certificates_hash_index", _Hashes),
        ("crls_hash_index", _Hashes),
        ("unsigned_attr_values_hash_index", _Hashes),
    ]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def add_archive_timestamp(
    signed: bytes, pki: TestPKI, detached_data: bytes | None = None, signer: int = 0, imprint_of: bytes | None = None
) -> bytes:
    """An archive-time-stamp-v3 on SignerInfo ``signer``; ``imprint_of`` stamps other bytes (a bad token)."""
    info = cms.ContentInfo.load(signed)
    sd = info["content"]
    si = sd["signer_infos"][signer]
    unsigned = [] if isinstance(si["unsigned_attrs"], core.Void) else list(si["unsigned_attrs"])
    crls = [] if isinstance(sd["crls"], core.Void) else list(sd["crls"])
    attr_values = [_sha256(a["type"].dump() + v.dump()) for a in unsigned for v in a["values"]]
    index = _IndexV3(
        {
            "hash_ind_algorithm": {"algorithm": "sha256"},
            "certificates_hash_index": [_sha256(c.dump()) for c in sd["certificates"]],
            "crls_hash_index": [_sha256(c.dump()) for c in crls],
            "unsigned_attr_values_hash_index": attr_values,
        }
    ).dump()
    content = detached_data if detached_data is not None else bytes(sd["encap_content_info"]["content"].native)
    fields = ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature")
    data = (
        sd["encap_content_info"]["content_type"].dump()
        + _sha256(content)
        + b"".join(si[f].dump() for f in fields)
        + index
    )

    async def stamp() -> cms.ContentInfo:
        async with aiohttp.ClientSession() as session:
            token = await HTTPTimeStamper(pki.tsa_url, session=session).async_timestamp(
                _sha256(imprint_of if imprint_of is not None else data), "sha256"
            )
            assert isinstance(token, cms.ContentInfo)
            return token

    token = asyncio.run(stamp())
    tsi = token["content"]["signer_infos"][0]
    tsi["unsigned_attrs"] = cms.CMSAttributes(
        [cms.CMSAttribute({"type": cms.CMSAttributeType(ATS_HASH_INDEX_V3), "values": [core.Any.load(index)]})]
    )
    attr = cms.CMSAttribute({"type": cms.CMSAttributeType(ATS_V3), "values": [core.Any.load(token.dump())]})
    si["unsigned_attrs"] = cms.CMSAttributes([*unsigned, attr])
    return bytes(info.dump())


def policy(pki: TestPKI) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(pki.root_der,))


def lt(pki: TestPKI, detached: bool = False, label: str = "signer") -> bytes:
    now = datetime.now(UTC)
    signed = sign_cms(BID, pki, label=label, detached=detached)
    return add_revocation_values(signed, [fetch_ocsp(pki, label, now)], [fetch_crl(pki, "root", now)])


def archive(sig: SignatureReport) -> list[tuple[str, bool]]:
    return [(t.kind, t.valid) for t in sig.timestamps if t.kind == "archive"]


@pytest.fixture(scope="module")
def lta_p7m(pki: TestPKI) -> bytes:
    return add_archive_timestamp(lt(pki), pki)


def test_enveloping_b_lta(pki: TestPKI, lta_p7m: bytes) -> None:
    sig = validate_file("offre.p7m", lta_p7m, policy(pki)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_LTA), (sig.warnings, sig.errors)
    assert archive(sig) == [("archive", True)]
    assert not any(w.startswith(NOT_VALIDATED) for w in sig.warnings)
    stamp = next(t for t in sig.timestamps if t.kind == "archive")
    assert sig.best_signature_time is not None and stamp.time >= sig.best_signature_time


def test_detached_b_lta(pki: TestPKI) -> None:
    p7s = add_archive_timestamp(lt(pki, detached=True), pki, detached_data=BID)
    sig = validate_files({"acte.p7s": p7s, "acte.txt": BID}, policy(pki))["acte.p7s"].signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_LTA), (sig.warnings, sig.errors)
    assert archive(sig) == [("archive", True)]


def test_validation_data_removed_after_archiving_is_detected(pki: TestPKI, lta_p7m: bytes) -> None:
    """The revocation values the archive timestamp covered are stripped: the index no longer matches."""
    info = cms.ContentInfo.load(lta_p7m)
    si = info["content"]["signer_infos"][0]
    si["unsigned_attrs"] = cms.CMSAttributes(
        [a for a in si["unsigned_attrs"] if a["type"].dotted != "1.2.840.113549.1.9.16.2.24"]
    )
    sig = validate_file("offre.p7m", bytes(info.dump()), policy(pki)).signatures[0]
    assert sig.level is Level.B_T
    assert archive(sig) == [("archive", False)]
    assert any(w.startswith(NOT_VALIDATED) and "no longer in the signature" in w for w in sig.warnings)


def test_certificate_removed_after_archiving_is_detected(pki: TestPKI, lta_p7m: bytes) -> None:
    info = cms.ContentInfo.load(lta_p7m)
    sd = info["content"]
    signer_serial = sd["signer_infos"][0]["sid"].chosen["serial_number"].native
    kept = [c for c in sd["certificates"] if c.chosen.serial_number == signer_serial]
    assert len(kept) < len(sd["certificates"])  # the chain's CA certificates go, the signer's stays
    sd["certificates"] = cms.CertificateSet(kept)
    sig = validate_file("offre.p7m", bytes(info.dump()), policy(pki)).signatures[0]
    assert sig.level is not Level.B_LTA
    assert any(w.startswith(NOT_VALIDATED) and "certificate" in w for w in sig.warnings)


def test_archive_timestamp_over_other_data_is_refused(pki: TestPKI) -> None:
    bad = add_archive_timestamp(lt(pki), pki, imprint_of=b"something else")
    sig = validate_file("offre.p7m", bad, policy(pki)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_LT)  # the signature itself is fine
    assert archive(sig) == [("archive", False)]
    assert any(w.startswith(NOT_VALIDATED) and "message imprint" in w for w in sig.warnings)


def test_content_changed_under_an_archive_timestamp(pki: TestPKI) -> None:
    p7s = add_archive_timestamp(lt(pki, detached=True), pki, detached_data=BID)
    sig = validate_file("acte.txt.p7s", p7s, policy(pki), {"acte.txt": BID + b"!"}).signatures[0]
    assert sig.indication is Indication.TOTAL_FAILED and sig.level is not Level.B_LTA
    assert archive(sig) == [("archive", False)]


def test_b_lta_on_one_signer_of_two(pki: TestPKI) -> None:
    """Archive timestamps are per SignerInfo: the co-signer without one stays B-LT."""
    both = co_sign(lt(pki), lt(pki, label="revoked-after"))
    stamped = add_archive_timestamp(both, pki, signer=1)
    first, second = validate_file("offre.p7m", stamped, policy(pki)).signatures
    assert (first.level, second.level) == (Level.B_LT, Level.B_LTA), (second.warnings, second.errors)
    assert archive(first) == [] and archive(second) == [("archive", True)]


def test_a_second_archive_timestamp_over_the_first(pki: TestPKI, lta_p7m: bytes) -> None:
    """Renewal: the second token's index covers the first archive timestamp; both verify."""
    renewed = add_archive_timestamp(lta_p7m, pki)
    sig = validate_file("offre.p7m", renewed, policy(pki)).signatures[0]
    assert (sig.indication, sig.level) == (Indication.TOTAL_PASSED, Level.B_LTA), sig.warnings
    assert archive(sig) == [("archive", True), ("archive", True)]
