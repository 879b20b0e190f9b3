"""Handing a tender's private key from the opening request to the opening job, never stored in clear.

The request rebuilds the private key from k shares; the job that decrypts the bids runs in a worker.
Between the two the key is encrypted (AES-256-GCM) under a fresh one-time key: the ciphertext goes
to the database (the job's row), the one-time key to a *drop* apart from it, with a time to live:

- Redis (the queue's own server) with ``SET ... EX``: the job takes it with ``GETDEL``, so it is
  readable once; unclaimed, Redis forgets it when the time to live runs out;
- the process's memory, when the service is embedded (its worker is in the same process).

Neither half alone gives the key; both are erased when the job takes it (the job then holds the key
in its memory only, like the request did). What this does not protect against is said in the
README ("The opening as a job"): whoever controls a worker, or reads both the database and Redis
inside that window, gets the key.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bidproc.encryption.recipients import PrivateKey
from bidproc.errors import BidprocError, Code


class KeyDrop(Protocol):
    def put(self, name: str, key: bytes, ttl_seconds: int) -> None: ...

    def take(self, name: str) -> bytes | None:
        """The key, once: None if it was taken already or has expired."""

    def discard(self, name: str) -> None: ...


class RedisDrop:
    def __init__(self, client: Any, namespace: str) -> None:
        self._client, self._prefix = client, f"{namespace}:opening-key:"

    def put(self, name: str, key: bytes, ttl_seconds: int) -> None:
        self._client.set(self._prefix + name, key, ex=ttl_seconds)

    def take(self, name: str) -> bytes | None:
        value = self._client.getdel(self._prefix + name)
        return bytes(value) if value is not None else None

    def discard(self, name: str) -> None:
        self._client.delete(self._prefix + name)


class MemoryDrop:
    """For an embedded service: the request and the job run in one process."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def put(self, name: str, key: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._keys[name] = (key, time.monotonic() + ttl_seconds)

    def take(self, name: str) -> bytes | None:
        with self._lock:
            key, until = self._keys.pop(name, (b"", 0.0))
        return key if key and time.monotonic() < until else None

    def discard(self, name: str) -> None:
        with self._lock:
            self._keys.pop(name, None)


def _aad(run_id: str, tender_id: str) -> bytes:
    return b"bidproc opening run v1\0" + run_id.encode() + b"\0" + tender_id.encode()


def wrap(private: PrivateKey, run_id: str, tender_id: str) -> tuple[bytes, bytes]:
    """(one-time key, sealed private key): the first goes to the drop, the second to the database."""
    pkcs8 = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    once, nonce = AESGCM.generate_key(256), os.urandom(12)
    sealed = nonce + AESGCM(once).encrypt(nonce, pkcs8, _aad(run_id, tender_id))
    del pkcs8  # Python cannot wipe it; no reference outlives this frame
    return once, sealed


def unwrap(once: bytes, sealed: bytes, run_id: str, tender_id: str) -> PrivateKey:
    try:
        pkcs8 = AESGCM(once).decrypt(sealed[:12], sealed[12:], _aad(run_id, tender_id))
    except InvalidTag:
        raise BidprocError(Code.OPENING_INTERRUPTED, "the opening key of this run does not open") from None
    private = serialization.load_der_private_key(pkcs8, None)
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BidprocError(Code.INTERNAL_ERROR, "the tender key is of an unexpected type")
    return private
