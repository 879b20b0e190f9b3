"""Tables. Only non-revealing metadata lives here: bid content is in the object store, encrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bidproc.domain import Bid, BidStatus, Document, Receipt, Tender, Verdict
from bidproc.errors import Code


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime refused")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import UTC

        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, bytes: LargeBinary}


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the key; the key is never kept
    role: Mapped[str] = mapped_column(String(20), default="platform", server_default="platform")  # tenants.Role
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class TenderRow(Base):
    __tablename__ = "tenders"
    __table_args__ = (UniqueConstraint("tenant_id", "reference"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    reference: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(1000))
    buyer: Mapped[str] = mapped_column(String(500))
    deadline: Mapped[datetime]
    created_at: Mapped[datetime]
    # The tender's own intake policy (IntakeLimits fields it changes, e.g. allowed_kinds); none: defaults.
    intake_policy: Mapped[dict[str, Any] | None]
    # How the tender opens (bidproc.encryption.tender_keys): certificates and, in committee mode, the
    # private key sealed under the members' shared secret. Nothing here opens a bid without k shares.
    opening: Mapped[dict[str, Any] | None]
    opened_at: Mapped[datetime | None]
    # The contract's kind and dates, set by the buyer once known (bidproc.archive.contract): they give the
    # retention of the tender's evidence packages. None: not known yet (the conservative default applies).
    contract: Mapped[dict[str, Any] | None]

    def value(self) -> Tender:
        """The tender as the layers above see it (never the row: they must not write through it)."""
        return Tender(self.id, self.tenant_id, self.reference, self.title, self.buyer, self.deadline,
                      self.intake_policy, self.opening, self.opened_at, self.contract)


class BidRow(Base):
    __tablename__ = "bids"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tender_id: Mapped[str] = mapped_column(ForeignKey("tenders.id"), index=True)
    bidder: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # The bid's data key, wrapped by the service key. None once the encryption stage has sealed the bid to
    # the tender's opening keys (the key is destroyed); a fresh one is set when the bid is opened.
    wrapped_key: Mapped[bytes | None]
    opened_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    upload_ended_at: Mapped[datetime | None]
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker holds a bid under a lease it renews as it progresses; a crashed worker's lease runs out
    # and the reconciler hands the bid to another worker. Two workers never process one bid at once.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    outcome: Mapped[dict[str, Any] | None]
    # The key of the bid's backup copy (AES-256), sealed (CMS) to the tender's opening keys by the
    # encryption stage. Erased at the opening when the backup is not needed: crypto-shredding.
    backup_key: Mapped[bytes | None]

    def value(self) -> Bid:
        return Bid(self.id, self.tender_id, self.bidder, BidStatus(self.status), self.created_at,
                   self.upload_ended_at)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("bid_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bid_id: Mapped[str] = mapped_column(ForeignKey("bids.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(1024))
    uploaded_at: Mapped[datetime]
    verdict: Mapped[str] = mapped_column(String(20), default="pending")
    code: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None]

    def value(self) -> Document:
        return Document(self.id, self.bid_id, self.name, self.size, self.sha256, self.object_key,
                        Verdict(self.verdict), Code(self.code) if self.code else None, self.detail or {})


class BackupFileRow(Base):
    """A file of a bid's backup copy ("copie de sauvegarde"): never read unless it replaces the bid."""

    __tablename__ = "backup_files"
    __table_args__ = (UniqueConstraint("bid_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bid_id: Mapped[str] = mapped_column(ForeignKey("bids.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(1024))
    uploaded_at: Mapped[datetime]

    def value(self) -> Document:
        """A backup file as the desk and the API see any uploaded file (never read: verdict pending)."""
        return Document(self.id, self.bid_id, self.name, self.size, self.sha256, self.object_key)


class ReceiptRow(Base):
    __tablename__ = "receipts"
    bid_id: Mapped[str] = mapped_column(ForeignKey("bids.id"), primary_key=True)
    body: Mapped[bytes]  # the receipt's exact bytes (canonical JSON): what the timestamp and seal cover
    timestamp_token: Mapped[bytes]  # RFC 3161 TimeStampResp, DER
    seal: Mapped[bytes]  # CMS SignedData over body, DER
    created_at: Mapped[datetime]

    def value(self) -> Receipt:
        return Receipt(self.bid_id, self.body, self.timestamp_token, self.seal, self.created_at)


class StageRunRow(Base):
    """One completed stage of one bid: the idempotency key is (bid, stage) with the content hash it saw."""

    __tablename__ = "stage_runs"
    bid_id: Mapped[str] = mapped_column(ForeignKey("bids.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime]
    result: Mapped[dict[str, Any] | None]


class JournalRow(Base):
    """Append-only audit journal; each entry's hash covers the previous entry's hash."""

    __tablename__ = "journal"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class JournalHeadRow(Base):
    """A single row locked while appending, so concurrent writers keep the chain linear."""

    __tablename__ = "journal_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class OpeningRunRow(Base):
    """One opening of a tender, run as a queued job (bidproc.desk.opening_job); its status is polled.

    ``sealed_key`` holds the tender's private key encrypted under a one-time key kept apart (in Redis
    with a time to live, or in the memory of an embedded service): neither alone opens anything, and
    both are erased when the job takes the key (README, "The opening as a job").
    """

    __tablename__ = "opening_runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tender_id: Mapped[str] = mapped_column(ForeignKey("tenders.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))  # the buyer's tenant
    key_id: Mapped[str] = mapped_column(String(36))  # the buyer's API key that gave the shares
    state: Mapped[str] = mapped_column(String(20))  # queued | running | done | failed
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime]  # the job's heartbeat while it runs
    key_expires_at: Mapped[datetime]
    sealed_key: Mapped[bytes | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None]
