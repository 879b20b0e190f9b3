"""Red-team: ASiC containers whose members are not all what the validator read.

The validator keeps one entry per name and skips entries it will not read (symlinks, encrypted entries,
absolute or ``..`` names). Skipped, they were covered by nothing and reported by nothing: the container
came out as signed as a whole while carrying data no signature covers. Read twice under one name, the
signature covered the last copy while an extracting tool may well show the first.
"""

from __future__ import annotations

import io
import zipfile

import pytest

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication
from bidproc.signature.validate import validate_file
from tests.pki import TestPKI
from tests.signature.signing import asic_s, sign_cms

BID = b"Offre financiere: total 61 300 EUR HT"


def _with_entry(container: bytes, name: str, data: bytes, *, mode: int | None = None, flags: int = 0) -> bytes:
    """``container`` with one more entry (written raw: zipfile warns about, but writes, a duplicate name)."""
    buffer = io.BytesIO(container)
    with zipfile.ZipFile(buffer, "a") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        with pytest.warns(UserWarning) if name in zf.namelist() else _nothing():
            zf.writestr(info, data)
    out = buffer.getvalue()
    if flags:  # zipfile does not write the general purpose flags it is given: set them in both headers
        for header, name_at, flag_at in ((b"PK\x03\x04", 30, 6), (b"PK\x01\x02", 46, 8)):
            where = out.find(header)
            while out[where + name_at : where + name_at + len(name)] != name.encode():
                where = out.find(header, where + 1)
            value = int.from_bytes(out[where + flag_at : where + flag_at + 2], "little") | flags
            out = out[: where + flag_at] + value.to_bytes(2, "little") + out[where + flag_at + 2 :]
    return out


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


@pytest.fixture(scope="module")
def container(pki: TestPKI) -> bytes:
    return asic_s("memoire.txt", BID, sign_cms(BID, pki))


def _report(pki: TestPKI, data: bytes) -> tuple[Indication, tuple[str, ...]]:
    report = validate_file("offre.asics", data, ValidationPolicy(trust_anchors=(pki.root_der,)))
    return report.signatures[0].indication, report.problems


def test_control_container_is_signed_as_a_whole(pki: TestPKI, container: bytes) -> None:
    assert _report(pki, container) == (Indication.TOTAL_PASSED, ())


@pytest.mark.parametrize(
    ("name", "mode", "flags"),
    [
        ("lien.txt", 0o120777, 0),  # a symlink entry
        ("chiffre.txt", None, 0x1),  # an entry flagged encrypted
        ("../hors.txt", None, 0),  # a name escaping the container
        ("/abs/prix.txt", None, 0),  # an absolute name
    ],
    ids=["symlink", "encrypted", "dot-dot", "absolute"],
)
def test_members_the_validator_does_not_read_are_reported(
    pki: TestPKI, container: bytes, name: str, mode: int | None, flags: int
) -> None:
    indication, problems = _report(pki, _with_entry(container, name, b"Avenant: prix 1 EUR", mode=mode, flags=flags))
    assert indication is Indication.TOTAL_PASSED  # the signature itself is fine...
    assert f"asic.ambiguous_member: {name}: not read" in " ".join(problems), problems  # ...the container is not


@pytest.mark.parametrize("tampered_first", [True, False])
def test_a_member_name_twice_is_reported(pki: TestPKI, tampered_first: bool) -> None:
    """The signed file's name twice, once with other bytes: the validator reads the last copy, a
    streaming extractor the first. Either order is an ambiguous container."""
    p7s = sign_cms(BID, pki)
    copies = [b"Offre financiere: total 1 EUR HT", BID]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mimetype", "application/vnd.etsi.asic-s+zip", compress_type=zipfile.ZIP_STORED)
        for data in copies if tampered_first else reversed(copies):
            with pytest.warns(UserWarning) if "memoire.txt" in zf.namelist() else _nothing():
                zf.writestr("memoire.txt", data)
        zf.writestr("META-INF/signature.p7s", p7s)
    indication, problems = _report(pki, buffer.getvalue())
    assert "asic.ambiguous_member: memoire.txt: several entries have this name" in problems, (indication, problems)


def _manifest_with(algorithm_uri: str, digest_name: str, members: dict[str, bytes]) -> bytes:
    import base64
    import hashlib

    refs = "".join(
        f'<asic:DataObjectReference URI="{name}"><ds:DigestMethod Algorithm="{algorithm_uri}"/>'
        f"<ds:DigestValue>{base64.b64encode(hashlib.new(digest_name, data).digest()).decode()}</ds:DigestValue>"
        "</asic:DataObjectReference>"
        for name, data in members.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><asic:ASiCManifest xmlns:asic="http://uri.etsi.org/02918/v1.2.1#" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><asic:SigReference URI="META-INF/signature001.p7s" '
        f'MimeType="application/pkcs7-signature"/>{refs}</asic:ASiCManifest>'
    ).encode()


@pytest.mark.parametrize(
    ("uri", "name", "passes"),
    [
        ("http://www.w3.org/2000/09/xmldsig#sha1", "sha1", False),
        ("http://www.w3.org/2001/04/xmlenc#sha256", "sha256", True),
    ],
    ids=["sha1", "sha256-control"],
)
def test_asic_e_manifest_digest_must_be_acceptable(pki: TestPKI, uri: str, name: str, passes: bool) -> None:
    """The manifest's digests are what binds the signature to the members: SHA-1 (collisions are
    practical) is refused there as it is for the CMS digest (INDETERMINATE/CRYPTO_CONSTRAINTS_FAILURE)."""
    from bidproc.signature.report import SubIndication
    from tests.signature.signing import asic_e

    members = {"memoire.txt": BID}
    manifest = _manifest_with(uri, name, members)
    container = asic_e(members, manifest, sign_cms(manifest, pki))
    report = validate_file("offre.asice", container, ValidationPolicy(trust_anchors=(pki.root_der,)))
    sig = report.signatures[0]
    if passes:
        assert sig.indication is Indication.TOTAL_PASSED and not report.problems
    else:
        assert (sig.indication, sig.subindication) == (
            Indication.INDETERMINATE,
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        ), (sig.indication, sig.errors)
