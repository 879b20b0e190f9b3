"""What one bidproc process needs, built once from the settings: the adapters every stage shares.

The clock is a parameter (``clock``), never read deep inside logic, so tests can move time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from bidproc.archive.seal import Sealer
from bidproc.archive.store import ObjectStore, open_store
from bidproc.config import Settings
from bidproc.encryption.keys import ServiceKey
from bidproc.errors import BidprocError, Code
from bidproc.intake.scan import ClamdScanner, Scanner
from bidproc.metadata.db import Database
from bidproc.signature.policy import ValidationPolicy
from bidproc.timestamps.localca import LocalPKI, load_or_create
from bidproc.timestamps.tsa import LocalTSA, RemoteTSA, TimestampAuthority


def utc_now() -> datetime:
    return datetime.now(UTC)


def load_certificates(files: str) -> tuple[bytes, ...]:
    """DER certificates from ':'-separated files, each PEM (one or several certificates) or DER."""
    from asn1crypto import pem

    found: list[bytes] = []
    for name in filter(None, files.split(":")):
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise BidprocError(Code.CONFIG_INVALID, f"certificate file {name}: {exc}") from exc
        found += [der for _, _, der in pem.unarmor(data, multiple=True)] if pem.detect(data) else [data]
    return tuple(found)


@dataclass
class Runtime:
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.database_url)
        db.migrate()
        return db

    @cached_property
    def store(self) -> ObjectStore:
        return open_store(self.settings)

    @cached_property
    def service_key(self) -> ServiceKey:
        return ServiceKey.load(self.settings.service.service_key, self.settings.data_path)

    @cached_property
    def local_pki(self) -> LocalPKI:
        return load_or_create(self.settings.data_path / "keys" / "local-ca", self.clock())

    @cached_property
    def tsa(self) -> TimestampAuthority:
        ts = self.settings.timestamping
        if ts.tsa_url:
            roots = load_certificates(ts.tsa_roots)
            if not roots:
                raise BidprocError(Code.CONFIG_INVALID, "timestamping.tsa_roots is required with a tsa_url: "
                                   "tokens are verified before a receipt relies on them")
            return RemoteTSA(ts.tsa_url, ts.timeout_seconds, roots=roots)
        return LocalTSA(self.local_pki)

    @cached_property
    def tsa_roots(self) -> tuple[bytes, ...]:
        """What the service's own timestamps chain to (to verify them again later, e.g. journal anchors)."""
        if self.settings.timestamping.tsa_url:
            return load_certificates(self.settings.timestamping.tsa_roots)
        from cryptography.hazmat.primitives import serialization

        return (self.local_pki.root.public_bytes(serialization.Encoding.DER),)

    @cached_property
    def sealer(self) -> Sealer:
        return Sealer.from_local_pki(self.local_pki)

    @cached_property
    def scanner(self) -> Scanner:
        return ClamdScanner(self.settings.clamd)

    @cached_property
    def trust_anchors(self) -> tuple[bytes, ...]:
        """DER certificates from ``signature.trust_anchor_files``."""
        return load_certificates(self.settings.signature.trust_anchor_files)

    def validation_policy(self, **extra: Any) -> ValidationPolicy:
        return ValidationPolicy(trust_anchors=self.trust_anchors, offline=self.settings.signature.offline, **extra)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
