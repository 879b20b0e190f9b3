"""What one bidproc process needs, built once from the settings: the adapters every stage shares.

The clock is a parameter (``clock``), never read deep inside logic, so tests can move time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bidproc.archive.seal import Sealer
from bidproc.archive.store import ObjectStore, open_store
from bidproc.config import Settings
from bidproc.encryption.keys import ServiceKey
from bidproc.errors import BidprocError, Code
from bidproc.intake.scan import ClamdScanner, Scanner
from bidproc.metadata.db import Database
from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.trust.cli import options_from_settings
from bidproc.signature.trust.source import anchors_from, trust_settings
from bidproc.timestamps.localca import LocalPKI, load_or_create
from bidproc.timestamps.tsa import LocalTSA, RemoteTSA, TimestampAuthority

if TYPE_CHECKING:
    from bidproc.signature.trust.assess import TrustSettings

log = logging.getLogger(__name__)


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
        """The metadata database, opened; its schema is what :meth:`migrate` last made it."""
        return Database(self.settings.database_url)

    def migrate(self) -> None:
        """Create or upgrade the schema (idempotent): an explicit step of each entry point that serves or
        writes (``serve``, ``up``, ``worker``, ``apikey``, ``journal``, ``demo``), never a side effect of
        opening the database, so no read path changes a schema behind an operator's back."""
        self.db.migrate()

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
        trust = self.trusted_lists()
        anchors = self.trust_anchors + (anchors_from(trust.lists) if trust is not None else ())
        if trust is not None:
            extra = {"trust": trust, **extra}
        return ValidationPolicy(trust_anchors=anchors, offline=self.settings.signature.offline, **extra)

    def trusted_lists(self) -> TrustSettings | None:
        """The EU trusted lists of ``[signature]`` (None when none is configured), reloaded when older than
        ``trust_refresh_hours``: workers run for weeks, lists change. A list that cannot be loaded leaves the
        signatures' verdicts alone: qualification is then reported not assessed (``trust.not_assessed``)."""
        sig = self.settings.signature
        if not (sig.lotl or sig.trusted_list_files or sig.equivalent_ca_files):
            return None
        now = self.clock()
        loaded = self.__dict__.get("_trust")
        if loaded is None or now - loaded[0] > timedelta(hours=sig.trust_refresh_hours):
            try:
                self.__dict__["_trust"] = loaded = (now, trust_settings(options_from_settings(self.settings)))
            except Exception:  # a missing file, an unreachable LOTL: reported in every report, not fatal
                log.exception("trusted lists could not be loaded; qualification is not assessed")
                if loaded is None:
                    return None
        return loaded[1]

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
