"""The clamd adapter: one interface (:class:`Scanner`), vendor errors translated into ours.

clamd is reached over TCP or a Unix socket with the INSTREAM command, so the bytes never touch a
file clamd could read: workers decrypt in memory and stream. ``scan.unavailable`` means *retry later*,
never *accepted unscanned*.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import IO, Protocol

import clamd

from bidproc.config import ClamdSettings
from bidproc.errors import BidprocError, Code


@dataclass(frozen=True)
class ScanResult:
    """clamd's answer for one stream: ``signature`` names the malware when one was found."""

    infected: bool
    signature: str | None = None
    engine: str = ""

    @property
    def clean(self) -> bool:
        return not self.infected


class Scanner(Protocol):
    def scan_stream(self, stream: IO[bytes]) -> ScanResult: ...

    def ping(self) -> None: ...


class _InstreamMixin:
    """INSTREAM with large chunks and ``sendall``.

    Written by hand because the ``clamd`` package's own ``instream`` sends 1 KiB chunks with
    ``socket.send`` (which may send part of a chunk and silently drop the rest under load).
    """

    clamd_socket: socket.socket

    def instream_chunks(self, stream: IO[bytes], chunk_bytes: int) -> str:
        self._init_socket()  # type: ignore[attr-defined]  # from the clamd classes mixed in below
        try:
            self.clamd_socket.sendall(b"zINSTREAM\0")
            try:
                while True:
                    chunk = stream.read(chunk_bytes)
                    if not chunk:
                        break
                    self.clamd_socket.sendall(struct.pack("!L", len(chunk)) + chunk)
                self.clamd_socket.sendall(struct.pack("!L", 0))
            except (BrokenPipeError, ConnectionResetError):
                # clamd hangs up mid-stream when a limit (StreamMaxLength) is crossed, after saying why:
                # read that answer instead of calling clamd unavailable.
                pass
            reply = b""
            while not reply.endswith(b"\0"):
                part = self.clamd_socket.recv(4096)
                if not part:
                    break
                reply += part
            return reply.rstrip(b"\0").decode("utf-8", "replace").strip()
        finally:
            self.clamd_socket.close()


class _NetworkClamd(_InstreamMixin, clamd.ClamdNetworkSocket):  # type: ignore[misc]
    pass


class _UnixClamd(_InstreamMixin, clamd.ClamdUnixSocket):  # type: ignore[misc]
    pass


class ClamdScanner:
    """Scans streams with a running clamd (``scripts/clamd.sh`` starts one for development)."""

    def __init__(self, settings: ClamdSettings) -> None:
        self._chunk = max(4096, settings.chunk_bytes)
        self._settings = settings
        self._where = settings.socket or f"{settings.host}:{settings.port}"

    @property
    def _client(self) -> _NetworkClamd | _UnixClamd:
        """A fresh client per call: the clamd classes keep their socket on the instance, so one shared
        client would have concurrent worker threads write into each other's connections."""
        s = self._settings
        if s.socket:
            return _UnixClamd(s.socket, timeout=s.timeout_seconds)
        return _NetworkClamd(s.host, s.port, timeout=s.timeout_seconds)

    def ping(self) -> None:
        try:
            self._client.ping()
        except (clamd.ClamdError, OSError) as exc:
            raise BidprocError(Code.SCAN_UNAVAILABLE, f"clamd at {self._where} does not answer: {exc}") from exc

    def version(self) -> str:
        try:
            return str(self._client.version())
        except (clamd.ClamdError, OSError) as exc:
            raise BidprocError(Code.SCAN_UNAVAILABLE, f"clamd at {self._where} does not answer: {exc}") from exc

    def scan_stream(self, stream: IO[bytes]) -> ScanResult:
        try:
            reply = self._client.instream_chunks(stream, self._chunk)
        except (clamd.ClamdError, OSError) as exc:
            raise BidprocError(Code.SCAN_UNAVAILABLE, f"clamd at {self._where} failed: {exc}") from exc
        return parse_reply(reply)


def parse_reply(reply: str) -> ScanResult:
    """Parse ``stream: OK`` / ``stream: <name> FOUND`` / ``... ERROR`` into a result or our error."""
    _, _, verdict = reply.partition(": ")
    if verdict == "OK":
        return ScanResult(infected=False)
    if verdict.endswith(" FOUND"):
        name = verdict[: -len(" FOUND")]
        if name.startswith("Heuristics.Limits.Exceeded"):
            # AlertExceedsMax: part of the content was beyond clamd's limits, so it was not all scanned.
            raise BidprocError(Code.SCAN_INCOMPLETE, f"clamd could not scan everything: {name}")
        return ScanResult(infected=True, signature=name)
    if "size limit exceeded" in reply:
        raise BidprocError(Code.SIZE_TOO_LARGE, f"clamd refused the stream: {reply}")
    if not reply:
        raise BidprocError(Code.SCAN_UNAVAILABLE, "clamd closed the connection without an answer")
    raise BidprocError(Code.SCAN_FAILED, f"clamd could not scan the stream: {reply}")
