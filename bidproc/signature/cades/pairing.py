"""Pairing a detached CAdES signature (.p7s) with the bid file it signs, by the signed message digest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from asn1crypto import cms
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko_certvalidator.util import get_pyca_cryptography_hash


@dataclass(frozen=True)
class Pairing:
    name: str | None
    data: bytes | None
    by_digest: bool


def _digests(sd: cms.SignedData) -> list[tuple[str, bytes]]:
    out = []
    for si in sd["signer_infos"]:
        try:
            md = find_unique_cms_attribute(si["signed_attrs"], "message_digest").native
        except (KeyError, ValueError):
            continue
        out.append((si["digest_algorithm"]["algorithm"].native, md))
    return out


def digest(algorithm: str, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(get_pyca_cryptography_hash(algorithm))
    h.update(data)
    return h.finalize()


def pair_detached(sig_name: str, sd: cms.SignedData, files: Mapping[str, bytes]) -> Pairing:
    """The file a detached signature signs: the one whose digest is the signed message digest.

    A file named after the signature (``x.pdf`` for ``x.pdf.p7s``) is only a fallback, used when no
    file matches the digest, so validation reports the HASH_FAILURE instead of silently pairing.
    """
    wanted = _digests(sd)
    for name, data in files.items():
        if name == sig_name:
            continue
        if any(digest(algo, data) == md for algo, md in wanted):
            return Pairing(name, data, True)
    stem = sig_name.rsplit(".", 1)[0]
    if stem in files and stem != sig_name:
        return Pairing(stem, files[stem], False)
    return Pairing(None, None, False)
