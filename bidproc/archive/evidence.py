"""A bid's evidence package from what the pipeline stores today: the glue between runtime and package.

Every object under the bid's prefix in the working store goes in, byte for byte, with a role read
from its place (originals, renditions, reports, receipt and its proofs, the pipeline's manifest);
the bid's journal entries go in as ``objects/journal.json``. Objects are opaque bytes with a role:
when the opening issue seals originals as CMS envelopes, they are archived the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from bidproc.archive.ltv import fetch_revocation
from bidproc.archive.package import (
    READ_STEP,
    Signer,
    Source,
    Written,
    bytes_source,
    version_prefix,
    versions,
    write_package,
)
from bidproc.archive.retention import RetentionPolicy, policy_of
from bidproc.archive.seal import Revocation
from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import ArchiveStore, open_archive
from bidproc.errors import BidprocError, Code
from bidproc.metadata.models import BidRow, JournalRow, TenderRow
from bidproc.runtime import Runtime
from bidproc.timestamps.tsa import LocalTSA

# What each stored object is, by where the pipeline puts it (first match wins).
ROLES: tuple[tuple[str, str], ...] = (
    ("files/", "original"),
    ("renditions/", "rendition"),
    ("reports/", "validation-report"),
    ("sealed/", "sealed-original"),
    ("opened/", "opened-document"),
    ("opening/", "opening-record"),
    ("receipt.json", "deposit-receipt"),
    ("receipt.tsr", "deposit-receipt-timestamp"),
    ("receipt.p7s", "deposit-receipt-seal"),
    ("manifest.json", "pipeline-manifest"),
)
ENCRYPTED_NOTE = "encrypted: bidproc chunked AES-256-GCM under the bid's data key (wrapped by the service key)"
OPENED_NOTE = ("opened and re-encrypted: bidproc chunked AES-256-GCM under the data key the opening made (wrapped "
               "by the service key); its plaintext SHA-256 is in objects/opening-record.json")
GAPS = (
    "SHA256SUMS.p7s is plain CMS SignedData (what openssl checks), with SHA256SUMS.tsr as its proof of "
    "time; manifest.json.p7s is the CAdES B-LT seal",
)
NO_CRL = ("the service PKI predates its CRL: manifest.json.p7s carries no revocation data for the seal (B-T, "
          "not B-LT)")


def role_of(relative: str) -> str:
    for start, role in ROLES:
        if relative == start or (start.endswith("/") and relative.startswith(start)):
            return role
    return "other"


def _stored(rt: Runtime, key: str, relative: str) -> Source:
    size = rt.store.size(key)

    def chunks() -> Iterator[bytes]:
        offset = 0
        while offset < size:
            piece = rt.store.read_at(key, offset, min(READ_STEP, size - offset))
            if not piece:
                break
            offset += len(piece)
            yield piece

    note = (OPENED_NOTE if relative.startswith("opened/") else ENCRYPTED_NOTE) if relative.endswith(".enc") else ""
    return Source(f"objects/{relative}", role_of(relative), size, chunks, note)


def journal_extract(rt: Runtime, bid_id: str) -> bytes:
    """The bid's journal entries with their chain hashes, checkable against the whole journal later."""
    with rt.db.session() as s:
        rows = s.execute(select(JournalRow).where(JournalRow.subject == bid_id).order_by(JournalRow.seq)).scalars()
        entries = [journal_entry(r) for r in rows]
    body = {"type": "bidproc.journal-extract", "bid": bid_id, "entries": entries}
    return json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def journal_entry(r: JournalRow) -> dict[str, Any]:
    """One journal entry as the archive keeps it, with its chain hashes (checkable against the journal)."""
    return {"seq": r.seq, "at": r.at.isoformat(timespec="microseconds"), "actor": r.actor, "action": r.action,
            "subject": r.subject, "detail": r.detail, "prev_hash": r.prev_hash, "hash": r.hash}


def signer_for(rt: Runtime) -> Signer:
    pki = rt.local_pki
    if isinstance(rt.tsa, LocalTSA):
        tsa_chain = rt.tsa.certificates_pem()
    else:  # a remote TSA embeds its certificate in the token; the configured roots close the chain
        tsa_chain = b"".join(x509.load_der_x509_certificate(r).public_bytes(serialization.Encoding.PEM)
                             for r in rt.tsa_roots)
    def stamp(digest: bytes) -> bytes:
        return rt.tsa.timestamp(digest, rt.clock()).response_der

    return Signer(
        seal=rt.sealer.seal,
        timestamp=stamp,
        seal_chain_pem=pki.chain_pem(pki.seal),
        tsa_chain_pem=tsa_chain,
        seal_manifest=lambda data: rt.sealer.seal(data, timestamp=stamp, revocation=revocation_for(rt)),
    )


def record_stamper(rt: Runtime) -> Callable[[bytes, str], bytes]:
    """The evidence records' timestamper: the service TSA, asked with the records' hash algorithm."""
    return lambda digest, algorithm: rt.tsa.timestamp(digest, rt.clock(), algorithm).response_der


def archive_bid(rt: Runtime, tender_id: str, bid_id: str, receipt_body: bytes, *, new_version: bool = False,
                policy: RetentionPolicy | None = None, archive: ArchiveStore | None = None,
                generated: Mapping[str, tuple[str, Callable[[], bytes]]] | None = None,
                header_extra: Mapping[str, Any] | None = None) -> Written:
    """Archive the bid's package: v1 at first; the same again is a no-op; ``new_version`` adds v<N+1>.

    A version already complete is never touched; an incomplete one (a crash mid-way) is finished.
    ``generated``: package path -> (role, make) of objects made now rather than read from the store
    (the journal extract always is); a version being finished keeps those it already holds.
    """
    archive = archive or open_archive(rt.settings)
    prefix = bid_prefix(tender_id, bid_id)
    existing = versions(archive, prefix)
    complete = sorted(v for v, done in existing.items() if done)
    unfinished = sorted(v for v, done in existing.items() if not done)
    if unfinished:
        version = unfinished[0]
    elif complete and not new_version:
        version = complete[-1]
    else:
        version = (max(existing) if existing else 0) + 1
    receipt = json.loads(receipt_body)
    received_at = datetime.fromisoformat(receipt["received_at"])
    retain_until, rule = (policy or tender_policy(rt, tender_id)).retain_until(received_at, rt.settings.archive)
    sources = [_stored(rt, key, key[len(prefix) + 1:]) for key in sorted(rt.store.keys(prefix + "/"))]
    made: dict[str, tuple[str, Callable[[], bytes]]] = {
        "objects/journal.json": ("journal-extract", lambda: journal_extract(rt, bid_id)), **(generated or {})}
    for path, (role, make) in made.items():
        # The journal grows; a version being finished after a crash keeps the extract it already holds.
        key = version_prefix(prefix, version) + path
        if archive.exists(key):
            with archive.open(key) as fh:
                data = fh.read()
        else:
            data = make()
        sources.append(bytes_source(path, role, data))
    header: dict[str, Any] = {
        "type": "bidproc.evidence-manifest",
        "format": 1,
        "version": version,
        "bid": bid_id,
        "tender": {"id": tender_id, **{k: receipt["consultation"].get(k) for k in ("reference", "title")}},
        "buyer": receipt.get("buyer"),
        "bidder": receipt.get("bidder"),
        "received_at": receipt["received_at"],
        "on_time": receipt.get("on_time"),
        "documents": receipt.get("files", []),
        "retention": {"until": retain_until.isoformat(), "rule": rule,
                      "mode": "COMPLIANCE" if archive.worm else "none: local directory, NOT WORM"},
        "store": archive.description,
        "previous": _previous(archive, prefix, complete[-1]) if complete and version > complete[-1] else None,
        "gaps": [*GAPS, *([NO_CRL] if rt.local_pki.crl is None else [])],
        **(header_extra or {}),
    }
    return write_package(archive, prefix, version, sources, header, signer_for(rt), retain_until, rt.clock())


def _previous(archive: ArchiveStore, prefix: str, version: int) -> dict[str, Any]:
    with archive.open(version_prefix(prefix, version) + "SHA256SUMS") as fh:
        return {"version": version, "sha256sums_sha256": hashlib.sha256(fh.read()).hexdigest()}


def tender_policy(rt: Runtime, tender_id: str) -> RetentionPolicy:
    """The retention facts the tender's buyer gave (``PATCH /v1/tenders/{id}`` with ``contract``)."""
    with rt.db.session() as s:
        tender = s.get(TenderRow, tender_id)
        return policy_of(tender.contract if tender is not None else None)


def locate(rt: Runtime, bid_id: str) -> str:
    """The bid's prefix, from the database."""
    with rt.db.session() as s:
        bid = s.get(BidRow, bid_id)
        if bid is None:
            raise BidprocError(Code.BID_NOT_FOUND, f"no bid {bid_id}")
        return bid_prefix(bid.tender_id, bid.id)


def extend_retention(archive: ArchiveStore, prefix: str, until: datetime) -> tuple[int, int]:
    """Lock every object of the bid's packages and records until ``until`` at least.

    Returns (objects extended, objects kept because already locked as long or longer): retention is
    never shortened, so a later, shorter rule leaves the longer date in place.
    """
    extended = kept = 0
    for key in archive.keys(prefix + "/evidence/"):
        current = archive.lock(key).retain_until
        if current is not None and current >= until:
            kept += 1
            continue
        archive.extend_retention(key, until)
        extended += 1
    return extended, kept


def revocation_for(rt: Runtime) -> Callable[[Sequence[asn1_x509.Certificate]], Revocation]:
    """The revocation data of the manifest seal's certificates: the local PKI's CRL covers the seal and
    the embedded TSA; a remote TSA's certificates get theirs fetched (see archive.ltv)."""
    local = (rt.local_pki.crl,) if rt.local_pki.crl else ()
    if isinstance(rt.tsa, LocalTSA):
        return lambda certs: Revocation(crls=local)
    return lambda certs: Revocation(crls=local) + fetch_revocation(certs, rt.tsa_roots, rt.clock())
