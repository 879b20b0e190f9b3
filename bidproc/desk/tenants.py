"""Platforms (tenants) and their API keys. Keys are shown once and kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.db import Database
from bidproc.metadata.models import ApiKeyRow, TenantRow

KEY_PREFIX = "bpk_"


class Role(StrEnum):
    """What a key may do. A platform runs the deposit; a buyer changes dates and opens; an archivist
    (reserved for the archive) reads evidence. One key, one role: a platform's key never opens a bid."""

    PLATFORM = "platform"  # tenders, bids, uploads, submit, status, receipts
    BUYER = "buyer"  # deadlines, the opening, the opened documents
    ARCHIVIST = "archivist"  # evidence packages (the archive's routes)


@dataclass(frozen=True)
class Caller:
    tenant: str  # tenant id
    role: Role
    key_id: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(db: Database, tenant_name: str, now: datetime, role: Role | str = Role.PLATFORM) -> str:
    """A new key for ``tenant_name`` (the tenant is created on first use). The key is returned once."""
    if not tenant_name.strip():
        raise BidprocError(Code.REQUEST_INVALID, "tenant name is empty")
    try:
        role = Role(role)
    except ValueError:
        raise BidprocError(Code.REQUEST_INVALID, f"unknown role {role!r}: one of {[r.value for r in Role]}") from None
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.session() as s:
        tenant = s.execute(select(TenantRow).where(TenantRow.name == tenant_name)).scalar_one_or_none()
        if tenant is None:
            tenant = TenantRow(id=str(uuid.uuid4()), name=tenant_name, created_at=now)
            s.add(tenant)
            s.flush()
        row = ApiKeyRow(id=str(uuid.uuid4()), tenant_id=tenant.id, key_hash=_hash(key), created_at=now,
                        role=role.value)
        s.add(row)
        append(
            s,
            actor="cli",
            action="apikey.created",
            subject=tenant.id,
            now=now,
            detail={"tenant": tenant_name, "key_id": row.id, "role": role.value},
        )
    return key


def authenticate(db: Database, key: str | None, now: datetime, journal_failure: bool = True) -> str:
    """The tenant id a key belongs to (see :func:`identify`)."""
    return identify(db, key, now, journal_failure).tenant


def identify(db: Database, key: str | None, now: datetime, journal_failure: bool = True) -> Caller:
    """Who a key is (tenant, role); failures are journalled (Annex IV (g): attempts are detectable),
    unless the caller already journalled that this client is being throttled (``journal_failure``)."""
    if not key:
        raise BidprocError(Code.AUTH_MISSING, "an API key is required: Authorization: Bearer <key>")
    with db.session() as s:
        row = s.execute(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key))).scalar_one_or_none()
        if row is not None and row.revoked_at is None:
            return Caller(row.tenant_id, Role(row.role), row.id)
        if journal_failure:
            append(
                s,
                actor="anonymous",
                action="access.denied",
                subject="api",
                now=now,
                detail={"reason": "unknown or revoked API key", "key_hash_prefix": _hash(key)[:12]},
            )
    raise BidprocError(Code.AUTH_DENIED, "unknown or revoked API key")


def require_role(db: Database, caller: Caller, allowed: frozenset[Role], action: str, now: datetime) -> None:
    """``auth.forbidden_role`` (journalled) unless ``caller``'s role is one of ``allowed``."""
    if caller.role in allowed:
        return
    with db.session() as s:
        append(s, actor=caller.tenant, action="access.forbidden_role", subject=action, now=now,
               detail={"key_id": caller.key_id, "role": caller.role.value,
                       "allowed": sorted(r.value for r in allowed)})
    raise BidprocError(Code.AUTH_FORBIDDEN_ROLE,
                       f"a {caller.role.value} key may not do this ({' or '.join(sorted(allowed))} only)")


def journal_throttled(db: Database, client: str, failures: int, now: datetime) -> None:
    """One entry when a client becomes throttled: the attempts stay detectable, the journal stays bounded."""
    with db.session() as s:
        append(
            s,
            actor="anonymous",
            action="access.throttled",
            subject="api",
            now=now,
            detail={"client": client, "failures": failures},
        )


def revoke_api_key(db: Database, key: str, now: datetime) -> str:
    """Revoke a key (given in full, as it was shown once); returns its tenant's name."""
    with db.session() as s:
        row = s.execute(select(ApiKeyRow).where(ApiKeyRow.key_hash == _hash(key))).scalar_one_or_none()
        if row is None:
            raise BidprocError(Code.AUTH_DENIED, "no such API key")
        tenant = s.get(TenantRow, row.tenant_id)
        row.revoked_at = row.revoked_at or now
        append(s, actor="cli", action="apikey.revoked", subject=row.tenant_id, now=now, detail={"key_id": row.id})
        return tenant.name if tenant else row.tenant_id
