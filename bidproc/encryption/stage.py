"""The encryption stage: seal every object of a bid to the tender's opening keys, then destroy its data key.

Until this stage a bid's objects are encrypted under a per-bid data key wrapped by the service key, so
bidproc could read them (intake and signature verification need to). Here each one (originals,
renditions, validation reports: every ``*.enc`` under the bid) is streamed into a CMS
AuthEnvelopedData addressed to the tender's opening certificate(s) under ``sealed/``; then, in one
transaction, the wrapped data key is deleted, the rows point at the sealed objects, the stage is
recorded and the destruction journalled; last the service-key objects are deleted. A crash before the
commit re-seals from the untouched sources; a crash after it leaves sources nobody can decrypt any
more (their key is gone), and the next delivery deletes them (:func:`remove_leftovers`).

Late and failed bids are sealed too, as a trace (``trace=True``): nothing of them is ever processed
again, so what is stored is sealed as it is. An original missing from storage, or one that no longer
hashes to its receipt, is said in the stage's result and journalled, not a reason to leave the rest
under the service key.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, BinaryIO, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bidproc.archive.store import StoredObject
from bidproc.domain import Stage
from bidproc.encryption import tender_keys
from bidproc.encryption.backup import seal_backup
from bidproc.encryption.envelope import seal
from bidproc.encryption.stream import DecryptingReader
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BackupFileRow, BidRow, DocumentRow, StageRunRow, TenderRow
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)
SOURCE_SUFFIX = ".enc"
SEALED_SUFFIX = ".p7m"


def sealed_key(prefix: str, source: str) -> str:
    """``<prefix>/files/<doc>.enc`` -> ``<prefix>/sealed/files/<doc>.p7m`` (and likewise for every object)."""
    relative = source[len(prefix) + 1 :]
    return f"{prefix}/sealed/{relative[: -len(SOURCE_SUFFIX)]}{SEALED_SUFFIX}"


def _sources(rt: Runtime, prefix: str, *, backup: bool = False) -> list[str]:
    """The bid's service-key objects (``backup``: those of its backup copy too, see encryption.backup)."""
    skip = ("sealed", "opened") if backup else ("sealed", "opened", "backup")
    return sorted(k for k in rt.store.keys(prefix + "/")
                  if k.endswith(SOURCE_SUFFIX) and not any(k.startswith(f"{prefix}/{p}/") for p in skip))


def seal_object(rt: Runtime, key: bytes, source: str, target: str, certs: list[x509.Certificate],
                expected_sha256: str | None = None, *, strict: bool = True) -> tuple[int, bool]:
    """Stream one service-key object into a CMS envelope (constant memory).

    Returns the plaintext size and whether it hashed to ``expected_sha256`` (True when none is given).
    ``strict``: a mismatch raises ``storage.integrity`` and the sealed object never appears; otherwise
    (a trace) it is sealed all the same and the mismatch returned.
    """
    reader = cast(BinaryIO, DecryptingReader(key, StoredObject(rt.store, source), context=source.encode()))
    with rt.store.open_writer(target) as writer:
        info = seal(reader, cast(BinaryIO, writer), certs, digest=expected_sha256 is not None)
        matches = expected_sha256 is None or info.sha256 == expected_sha256
        if strict and not matches:
            # raised inside the writer: the sealed object never appears
            raise BidprocError(Code.STORAGE_INTEGRITY, f"{source} does not hash to the received {expected_sha256}")
    return info.size, matches


def run(rt: Runtime, actor: str, bid_id: str, key: bytes | None, content_hash: str, prefix: str, *,
        trace: bool = False) -> bool:
    """Seal the bid (see the module's docstring); False when another delivery had already done it.

    ``trace``: a late or failed bid, sealed as it is stored (see the module's docstring).
    """
    with rt.db.session() as s:
        bid = s.get(BidRow, bid_id)
        tender = s.get(TenderRow, bid.tender_id) if bid is not None else None
        assert bid is not None and tender is not None
        opening = tender.opening
        originals = {d.object_key: d.sha256 for d in s.query(DocumentRow).filter(DocumentRow.bid_id == bid_id)}
        backups = {b.object_key: b.sha256 for b in s.query(BackupFileRow).filter(BackupFileRow.bid_id == bid_id)}
    if opening is None:
        # A tender created before sealing existed (schema 0003): nothing to seal to. Said, not hidden.
        _complete(rt, actor, bid_id, content_hash, {"skipped": "the tender has no opening key"}, {}, destroy=False)
        return True
    if tender_keys.is_strict(opening):
        # Strict: sealed from its first byte, processed only once opened; readable by authorised people
        # from then on, as any opened bid: sealing it again would only hide it from the buyer's read paths.
        _complete(rt, actor, bid_id, content_hash, {"skipped": "strict: opened before it was processed"}, {},
                  destroy=False)
        return True
    if key is None:
        raise BidprocError(Code.INTERNAL_ERROR, "the bid's data key is gone but it is not sealed")
    certs = tender_keys.certificates(opening)
    sources = _sources(rt, prefix)
    missing = sorted(set(originals) - set(sources))
    if missing and not trace:
        raise BidprocError(Code.STORAGE_NOT_FOUND, f"{len(missing)} original(s) of the bid are not in storage")
    mapping: dict[str, str] = {}
    plain_bytes, altered, unreadable = 0, [], []
    for source in sources:
        target = sealed_key(prefix, source)
        try:
            size, matches = seal_object(rt, key, source, target, certs, originals.get(source), strict=not trace)
        except BidprocError as exc:
            if not trace or exc.code is not Code.STORAGE_INTEGRITY:
                raise
            # a trace's object that no longer decrypts (altered in storage): nothing readable to seal;
            # it is said here and in the journal, and deleted with the rest (its key is destroyed below)
            unreadable.append(source)
            continue
        plain_bytes += size
        mapping[source] = target
        if not matches:
            altered.append(target)
    result: dict[str, Any] = {"objects": len(mapping), "bytes": plain_bytes, "mode": opening["mode"],
                              "recipients": [c.fingerprint(hashes.SHA256()).hex() for c in certs],
                              "sealed": sorted(mapping.values())}
    backup = seal_backup(rt, key, prefix, certs, backups, trace=trace)
    if backup is not None:
        mapping |= backup.mapping
        altered += backup.altered
        unreadable += backup.unreadable
        result["backup"] = {"objects": len(backup.mapping), "sealed": sorted(backup.mapping.values())}
    if trace:
        result |= {"trace": True, "missing": missing, "altered": sorted(altered), "unreadable": unreadable}
    done = _complete(rt, actor, bid_id, content_hash, result, mapping, destroy=True,
                     backup_key=backup.key_envelope if backup is not None else None)
    remove_leftovers(rt, bid_id, prefix)
    return done


def _complete(rt: Runtime, actor: str, bid_id: str, content_hash: str, result: dict[str, Any],
              mapping: dict[str, str], *, destroy: bool, backup_key: bytes | None = None) -> bool:
    now: datetime = rt.clock()
    with rt.db.session() as s:
        bid = s.query(BidRow).filter(BidRow.id == bid_id).with_for_update().one()
        if s.get(StageRunRow, (bid_id, Stage.ENCRYPTION.value)) is not None:
            return False
        for doc in s.query(DocumentRow).filter(DocumentRow.bid_id == bid_id):
            doc.object_key = mapping.get(doc.object_key, doc.object_key)
            report = (doc.detail or {}).get("report") or {}
            if report.get("renditions"):
                renditions = [{**r, "object_key": mapping.get(r.get("object_key", ""), r.get("object_key"))}
                              for r in report["renditions"]]
                doc.detail = {**(doc.detail or {}), "report": {**report, "renditions": renditions}}
        for row in s.query(BackupFileRow).filter(BackupFileRow.bid_id == bid_id):
            row.object_key = mapping.get(row.object_key, row.object_key)
        bid.backup_key = backup_key or bid.backup_key
        s.add(StageRunRow(bid_id=bid_id, stage=Stage.ENCRYPTION.value, content_hash=content_hash, completed_at=now,
                          result=result))
        bid.updated_at = now
        if destroy:
            bid.wrapped_key = None
            append(s, actor=actor, action="bid.data_key.destroyed", subject=bid_id, now=now,
                   detail={"sealed_objects": len(mapping), "recipients": result["recipients"],
                           **{k: result[k] for k in ("trace", "missing", "altered", "unreadable") if k in result}})
        append(s, actor=actor, action=f"stage.{Stage.ENCRYPTION.value}.done", subject=bid_id, now=now)
    return True


def remove_leftovers(rt: Runtime, bid_id: str, prefix: str) -> int:
    """Delete the service-key objects of a sealed bid (their key is destroyed: they are noise now)."""
    with rt.db.session() as s:
        bid = s.get(BidRow, bid_id)
        if bid is None or (bid.wrapped_key is not None and bid.opened_at is None):
            return 0  # not sealed (or sealing skipped): the sources are the bid
        tender = s.get(TenderRow, bid.tender_id)
        if tender is not None and tender_keys.is_strict(tender.opening):
            return 0  # strict, opened before it was processed: its service-key objects are the bid
    removed = 0
    for source in _sources(rt, prefix, backup=True):
        rt.store.delete(source)
        removed += 1
    return removed
