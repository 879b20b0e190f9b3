"""Settings: built-in defaults, then a TOML file, then ``BIDPROC_<SECTION>_<KEY>`` environment variables.

The file is ``$BIDPROC_CONFIG`` if set, else ``config/bidproc.toml`` in the working directory if present.
Every setting has a default that runs the embedded service (SQLite, local directory, in-process queue,
local TSA), so ``bidproc up`` works with no file at all.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bidproc.errors import BidprocError, Code


def _secret() -> Any:
    return field(default="", metadata={"secret": True})


@dataclass(frozen=True)
class ServiceSettings:
    data_dir: str = "./var"
    # 32-byte key (hex) wrapping every per-bid data key; created under data_dir/keys when empty.
    service_key: str = _secret()
    public_url: str = "http://127.0.0.1:8080"
    # How often the journal's head hash is timestamped (0: never), so that even someone able to
    # rewrite the database cannot recompute the chain unnoticed.
    journal_anchor_seconds: int = 3600
    log_format: str = "text"  # text (a terminal) | json (one object per line, for a log pipeline)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # empty: sqlite file under data_dir


@dataclass(frozen=True)
class StorageSettings:
    backend: str = "local"  # local | s3
    local_dir: str = ""  # empty: data_dir/objects
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "bidproc"
    s3_secret_key: str = _secret()
    s3_bucket: str = "bidproc"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    # Evidence packages: a bucket of their own, created with versioning and Object Lock (S3), or a
    # directory (local; empty: data_dir/archive) that is NOT WORM.
    archive_bucket: str = "bidproc-archive"
    archive_dir: str = ""


@dataclass(frozen=True)
class QueueSettings:
    backend: str = "embedded"  # embedded | redis | rabbitmq
    redis_url: str = "redis://127.0.0.1:6379/0"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = "bidproc"
    # How long a bid may sit in a non-final state before the reconciler enqueues it again.
    stuck_after_seconds: int = 300
    reconcile_every_seconds: int = 60
    # Seconds before a dead worker's messages are handed to another worker (Redis broker).
    heartbeat_timeout_seconds: int = 60
    # How long a worker's hold on a bid lasts without renewal (renewed every third of it while alive).
    lease_seconds: int = 120
    # Deliveries of one bid before it is marked failed (a poison bid must not cycle through workers).
    max_attempts: int = 25
    worker_threads: int = 2
    # While clamd, the sandbox, storage or the TSA is down, a bid waits (not counted as an attempt),
    # retried after wait_first_delay_seconds, doubling up to wait_max_delay_seconds.
    wait_first_delay_seconds: float = 5.0
    wait_max_delay_seconds: float = 60.0


@dataclass(frozen=True)
class ClamdSettings:
    socket: str = ""  # a Unix socket path; empty: TCP host/port
    host: str = "127.0.0.1"
    port: int = 3310
    timeout_seconds: float = 120.0
    chunk_bytes: int = 1 << 20


@dataclass(frozen=True)
class TimestampSettings:
    tsa_url: str = ""  # empty: the embedded local TSA (not qualified, said so in every receipt)
    timeout_seconds: float = 30.0
    # Root certificates (PEM/DER files, ':'-separated) the configured TSA must chain to: every token it
    # returns is verified before a receipt relies on it. Required with tsa_url.
    tsa_roots: str = ""


@dataclass(frozen=True)
class IntakeSettings:
    # Each bid's documents are inspected in a child process with this much address space at most, and
    # each document gets sandbox_seconds plus one second per 10 MiB before it is given up (parse.timeout).
    sandbox_memory_bytes: int = 3 << 30
    sandbox_seconds: float = 300.0


@dataclass(frozen=True)
class SignatureSettings:
    # Certificates (PEM or DER files, separated by ':') that validation may chain to. With none, no
    # signature can come out TOTAL_PASSED: the OS trust store is never used.
    trust_anchor_files: str = ""
    offline: bool = False  # no OCSP/CRL fetching: only revocation data embedded in signatures counts
    # EU trusted lists (qualified status, French rule's certificate category): the LOTL as a file or URL
    # (a URL is cached under data_dir/trusted-lists and refreshed when older than trust_refresh_hours),
    # national lists as files (':'-separated), CA certificates accepted as equivalent to qualified ones,
    # and the LOTL's signers (empty: the Official Journal certificates bundled with pyhanko).
    lotl: str = ""
    trusted_list_files: str = ""
    equivalent_ca_files: str = ""
    lotl_signer_files: str = ""
    trust_refresh_hours: float = 24.0


@dataclass(frozen=True)
class ArchiveSettings:
    # Retention (bidproc.archive.retention): bids 5 years from contract signature, works 10 years from
    # the end of performance; until those dates are known, this many years from the receipt.
    bid_retention_years: int = 5
    works_retention_years: int = 10
    default_retention_years: int = 15
    # RFC 4998 evidence records (bidproc.archive.records): the hash algorithm of new records; records on
    # a weaker one get a hash-tree renewal at the next `bidproc evidence renew` (sha256, sha384, sha512).
    record_hash_algorithm: str = "sha256"


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_file_bytes: int = 4 << 30
    max_files_per_bid: int = 1000
    max_concurrent_uploads: int = 64  # beyond: 503 service.busy (each upload holds a writer thread)
    max_concurrent_uploads_per_tenant: int = 16  # beyond: 429 quota.uploads, so one platform cannot take all
    tenant_uploads_per_minute: int = 600  # per platform (0: no limit); beyond: 429 quota.rate
    tenant_max_stored_bytes: int = 0  # per platform, every file of its tenders (0: no quota); 429 quota.storage
    upload_idle_seconds: float = 60.0  # an upload that sends nothing for this long is dropped (request.timeout)
    max_json_bytes: int = 256 << 10  # JSON request bodies (tenders, bids); file uploads are streamed, not bound here
    verify_page: bool = False  # GET /verify: a public page validating dropped files (off by default)
    verify_page_max_bytes: int = 50 << 20  # per verification (file and detached data); beyond: 413
    verify_page_per_minute: int = 10  # per client address; beyond: 429 quota.rate
    auth_max_failures: int = 10  # failed authentications per client address and window, then 429 auth.throttled
    auth_window_seconds: float = 60.0


@dataclass(frozen=True)
class Settings:
    service: ServiceSettings = field(default_factory=ServiceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    clamd: ClamdSettings = field(default_factory=ClamdSettings)
    timestamping: TimestampSettings = field(default_factory=TimestampSettings)
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    signature: SignatureSettings = field(default_factory=SignatureSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.service.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'bidproc.db'}"

    @property
    def local_store_path(self) -> Path:
        return Path(self.storage.local_dir).resolve() if self.storage.local_dir else self.data_path / "objects"

    def masked(self) -> dict[str, dict[str, Any]]:
        """The effective settings with every secret replaced, for ``bidproc config show``."""
        out: dict[str, dict[str, Any]] = {}
        for section in fields(self):
            values = getattr(self, section.name)
            shown: dict[str, Any] = {}
            for f in fields(values):
                value = getattr(values, f.name)
                if f.metadata.get("secret") and value:
                    value = "********"
                elif f.name in {"url", "redis_url", "rabbitmq_url"} and isinstance(value, str):
                    value = _mask_url_password(value)
                shown[f.name] = value
            out[section.name] = shown
        return out


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _pw = creds.partition(":")
    return f"{scheme}://{user}{':********' if colon else ''}@{host}"


def _coerce(raw: Any, target: Any, where: str) -> Any:
    kind = target if isinstance(target, type) else {"str": str, "int": int, "float": float, "bool": bool}[target]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise BidprocError(Code.CONFIG_INVALID, f"{where}: expected a boolean, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise BidprocError(Code.CONFIG_INVALID, f"{where}: expected {kind.__name__}, got {raw!r}") from exc


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    file_path = Path(path) if path else Path(env["BIDPROC_CONFIG"]) if env.get("BIDPROC_CONFIG") else None
    if file_path is None and Path("config/bidproc.toml").is_file():
        file_path = Path("config/bidproc.toml")
    data: dict[str, Any] = {}
    if file_path is not None:
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BidprocError(Code.CONFIG_INVALID, f"cannot read {file_path}: {exc}") from exc
    sections: dict[str, Any] = {}
    for section in fields(Settings):
        cls = section.type if isinstance(section.type, type) else globals()[str(section.type)]
        given = data.get(section.name, {})
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise BidprocError(Code.CONFIG_INVALID, f"[{section.name}] unknown settings: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            where = f"{section.name}.{f.name}"
            env_name = f"BIDPROC_{section.name}_{f.name}".upper()
            if env_name in env:
                values[f.name] = _coerce(env[env_name], f.type, env_name)
            elif f.name in given:
                values[f.name] = _coerce(given[f.name], f.type, where)
        sections[section.name] = cls(**values)
    return Settings(**sections)


def replace(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with some values changed, e.g. ``replace(s, storage={"backend": "s3"})``."""
    changed = {name: dataclasses.replace(getattr(settings, name), **values) for name, values in sections.items()}
    return dataclasses.replace(settings, **changed)
