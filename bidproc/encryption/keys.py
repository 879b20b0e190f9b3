"""Key hierarchy: a service key (KEK) wraps one random data key per bid (RFC 3394 AES key wrap)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from bidproc.errors import BidprocError, Code


class ServiceKey:
    """The key-encryption key. In production it comes from a secret store through the environment."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise BidprocError(Code.CONFIG_INVALID, "service key must be 32 bytes (64 hex characters)")
        self._key = key

    @classmethod
    def load(cls, configured_hex: str, data_dir: Path) -> ServiceKey:
        """The configured key, else one kept under ``data_dir/keys`` (created 0600 on first run)."""
        if configured_hex:
            try:
                return cls(bytes.fromhex(configured_hex))
            except ValueError as exc:
                raise BidprocError(Code.CONFIG_INVALID, "service key is not hex") from exc
        path = data_dir / "keys" / "service.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            temp = path.with_name(f".service.key.{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(os.urandom(32).hex())
                fh.flush()
                os.fsync(fh.fileno())
            try:  # two processes starting together: the first key written wins, the other is dropped
                os.link(temp, path)
            except FileExistsError:
                pass
            finally:
                temp.unlink(missing_ok=True)
        return cls(bytes.fromhex(path.read_text().strip()))

    def new_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form (the only form ever stored)."""
        key = os.urandom(32)
        return key, aes_key_wrap(self._key, key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap as exc:
            raise BidprocError(Code.STORAGE_INTEGRITY, "data key does not unwrap under the service key") from exc
