"""One file streaming into a draft bid: a file of the bid, or of its backup copy.

The bytes are encrypted chunk by chunk on their way to the object store (under the bid's data key,
wrapped by the service key, until the encryption stage seals them); the row and the journal entry are
written once the whole file is in, so a refused or broken upload leaves nothing behind.

In a strict tender (``process_at: opening``) there is no data key: the bytes are sealed (CMS, to the
tender's opening certificate) as they arrive, into ``<prefix>/sealed/files/<doc>.p7m``, and only their
SHA-256 and size are kept for the receipt. Nothing the service holds opens them before the opening.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bidproc.archive.store import bid_prefix
from bidproc.domain import BidStatus, Document, clean_file_name, name_key
from bidproc.encryption import tender_keys
from bidproc.encryption.envelope import Sealer
from bidproc.encryption.stage import SEALED_SUFFIX
from bidproc.encryption.stream import Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BackupFileRow, DocumentRow

if TYPE_CHECKING:
    from bidproc.desk.deposit import Desk

# Pauses (seconds) before each look for the row after an ambiguous commit: a dropped connection is often
# back at once (a pool's next connection, a restarted proxy); the request does not wait longer than this.
SETTLE_PAUSES = (0.0, 0.2, 1.0)


def begin_upload(desk: Desk, tenant: str, bid_id: str, name: str, *, backup: bool = False) -> Upload:
    """Check that the file may be added now; the upload then streams in (:class:`Upload`)."""
    name = clean_file_name(name)
    table: type[DocumentRow] | type[BackupFileRow] = BackupFileRow if backup else DocumentRow
    with desk.rt.db.reading() as s:  # does not queue for SQLite's writer; checked again when recorded (_record)
        bid, tender = desk._bid(s, tenant, bid_id)
        if bid.status != BidStatus.DRAFT.value:
            raise BidprocError(Code.BID_ALREADY_SUBMITTED, "files can only be added to a bid not yet submitted")
        if backup and (tender.opening or {}).get("mode") != "committee":
            # only the service opens a backup in place of its bid; in recipients mode it cannot open at all
            raise BidprocError(Code.OPENING_OFFLINE, "a backup copy needs a tender opened by a committee")
        _refuse_taken(s, table, bid_id, name)
        count = s.execute(select(func.count()).select_from(table).where(table.bid_id == bid_id)).scalar()
        most = desk.rt.settings.api.max_files_per_bid
        if (count or 0) >= most:
            raise BidprocError(Code.BID_TOO_MANY_FILES, f"a bid (and its backup copy) holds at most {most} files")
        doc_id = str(uuid.uuid4())
        prefix = bid_prefix(tender.id, bid.id)
        if tender_keys.is_strict(tender.opening):
            if backup:  # its crypto-shredding needs a key of its own: not built for strict tenders
                raise BidprocError(Code.REQUEST_INVALID, "a strict tender (process_at: opening) takes no backup copy")
            certs = tender_keys.certificates(tender.opening or {})
            return Upload(desk, tenant, bid_id, doc_id, name, f"{prefix}/sealed/files/{doc_id}{SEALED_SUFFIX}",
                          None, certs=certs)
        if bid.wrapped_key is None:  # a draft always has its key; be explicit rather than assert
            raise BidprocError(Code.BID_ALREADY_SUBMITTED, "this bid is sealed")
        key = desk.rt.service_key.unwrap(bid.wrapped_key)
        object_key = f"{prefix}/{'backup' if backup else 'files'}/{doc_id}.enc"
    return Upload(desk, tenant, bid_id, doc_id, name, object_key, key, backup)


def _refuse_taken(s: Session, table: type[DocumentRow] | type[BackupFileRow], bid_id: str, name: str) -> None:
    """``file.duplicate`` when the bid holds ``name``, or a name a buyer's disk would take for it
    (:func:`bidproc.domain.name_key`: the same but for case or Unicode normalisation)."""
    key = name_key(name)
    for held in s.execute(select(table.name).where(table.bid_id == bid_id)).scalars():
        if name_key(held) == key:
            also = "" if held == name else f" as {held!r} (names differing only by case are one file on a disk)"
            raise BidprocError(Code.FILE_DUPLICATE, f"file {name!r} is already in this bid{also}")


@dataclass
class Upload:
    """One file streaming in: encrypted chunk by chunk (sealed, in a strict tender) on its way to the store."""

    desk: Desk
    tenant: str
    bid_id: str
    doc_id: str
    name: str
    object_key: str
    data_key: bytes | None  # None: sealed to ``certs`` instead (strict tender)
    backup: bool = False
    certs: list[x509.Certificate] | None = None

    def __post_init__(self) -> None:
        self._stack = contextlib.ExitStack()
        writer = self._stack.enter_context(self.desk.rt.store.open_writer(self.object_key))
        self._encryptor: Encryptor | Sealer
        if self.certs is not None:
            self._encryptor = Sealer(writer, self.certs)
        else:
            assert self.data_key is not None
            self._encryptor = Encryptor(self.data_key, writer.write, context=self.object_key.encode())
        self._limit = self.desk.rt.settings.api.max_file_bytes

    def write(self, data: bytes) -> None:
        if self._encryptor.size + len(data) > self._limit:
            raise BidprocError(Code.SIZE_TOO_LARGE, f"file larger than {self._limit} bytes")
        self._encryptor.write(data)

    def abort(self, exc: BaseException) -> None:
        self._stack.__exit__(type(exc), exc, exc.__traceback__)

    def commit(self) -> Document:
        if isinstance(self._encryptor, Sealer):
            digest = self._encryptor.finish().sha256
            assert digest is not None  # the sealer was made with digest=True: the receipt needs it
            self._sha256 = digest
        else:
            self._sha256 = self._encryptor.finish()
        self._stack.close()  # the object is now complete under its final key
        rt = self.desk.rt
        try:
            return self._record(rt.clock()).value()
        except BidprocError as exc:
            if exc.code is not Code.DATABASE_UNAVAILABLE:
                rt.store.delete(self.object_key)  # a definite refusal (bid no longer a draft): nothing kept
                raise
            # The connection dropped, perhaps during COMMIT: the row may be saved. Deleting the object now
            # could leave a row without its bytes (and a retry answered file.duplicate), so ask first.
            return self._settle(exc)
        except BaseException as exc:
            # No row, no object: a refused or failed upload leaves nothing behind under the bid.
            rt.store.delete(self.object_key)
            if isinstance(exc, IntegrityError):
                raise BidprocError(Code.FILE_DUPLICATE, f"file {self.name!r} is already in this bid") from exc
            raise

    def _settle(self, outage: BidprocError) -> Document:
        """After an ambiguous commit: the row saved is a success; the row absent, the object goes and the
        client retries (``database.unavailable``). The database still down: the object is kept (an
        orphan at worst, never a row without its bytes) and the client retries."""
        for pause in SETTLE_PAUSES:
            time.sleep(pause)
            try:
                with self.desk.rt.db.reading() as s:
                    row = s.get(BackupFileRow, self.doc_id) if self.backup else s.get(DocumentRow, self.doc_id)
                    if row is not None:
                        return row.value()
            except BidprocError as down:
                if down.code is not Code.DATABASE_UNAVAILABLE:
                    raise
                continue
            self.desk.rt.store.delete(self.object_key)
            raise outage
        raise outage

    def _record(self, now: datetime) -> DocumentRow | BackupFileRow:
        with self.desk.rt.db.session() as s:
            bid, _ = self.desk._bid(s, self.tenant, self.bid_id, lock=True)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, "the bid was submitted during this upload")
            _refuse_taken(s, BackupFileRow if self.backup else DocumentRow, self.bid_id, self.name)  # a twin raced in
            fields = {"id": self.doc_id, "bid_id": self.bid_id, "name": self.name, "size": self._encryptor.size,
                      "sha256": self._sha256, "object_key": self.object_key, "uploaded_at": now}
            row = BackupFileRow(**fields) if self.backup else DocumentRow(**fields, verdict="pending")
            s.add(row)
            bid.updated_at = now
            append(
                s,
                actor=self.tenant,
                action="backup.file.received" if self.backup else "file.received",
                subject=self.bid_id,
                now=now,
                detail={"document": self.doc_id, "size": row.size, "sha256": self._sha256},
            )
        return row
