"""Archive benchmark: evidence packages written to S3 with Object Lock, against raw ``minio.put_object``.

    .venv/bin/python bench/archive.py [--endpoint HOST:PORT] [--small 1000] [--large 5] [--large-mb 1024]

Each bid's objects are generated in memory (small bids: 5 files of 200 KB; large bids: one file of
``--large-mb``) and archived by ``bidproc.archive.package.write_package`` into a versioned Object Lock
bucket, sealed by a local PKI's seal and timestamped by its TSA, exactly as the archive stage does
(minus reading the working store). The same bytes are then put with plain ``put_object`` into a plain
bucket in the same run. Prints packages/s, MB/s and the ratio to raw put for small and large bids, and
the per-package overhead (manifest, two seals, the timestamp, SHA256SUMS, retention checks) measured
on empty bids. Starts its own moto_server unless ``--endpoint`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bidproc.archive.package import Signer, Source, write_package  # noqa: E402
from bidproc.archive.seal import Revocation, Sealer  # noqa: E402
from bidproc.archive.worm_s3 import S3Archive  # noqa: E402
from bidproc.timestamps.localca import load_or_create  # noqa: E402
from bidproc.timestamps.tsa import LocalTSA  # noqa: E402

MB = 1 << 20
BLOCK = 8 * MB


def _moto() -> tuple[str, subprocess.Popen[bytes]]:
    exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return f"127.0.0.1:{port}", proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def _chunks(block: bytes, size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        yield piece


class _Reader:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._buffer += piece
        size = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _bid(sizes: list[int], block: bytes) -> list[Source]:
    return [Source(f"objects/files/{n}.enc", "original", size, lambda size=size: _chunks(block, size))
            for n, size in enumerate(sizes)]


def run(endpoint: str, small: int, large: int, large_mb: int) -> None:
    from minio import Minio

    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        now = datetime.now(UTC)
        pki = load_or_create(tmp / "ca", now)
        sealer, tsa = Sealer.from_local_pki(pki), LocalTSA(pki)

        def stamp(digest: bytes) -> bytes:
            return tsa.timestamp(digest, datetime.now(UTC)).response_der

        # As the runtime's (archive.evidence.signer_for): the manifest's seal is CAdES B-LT.
        crl = Revocation(crls=(pki.crl,) if pki.crl else ())
        signer = Signer(seal=sealer.seal, timestamp=stamp, seal_chain_pem=pki.chain_pem(pki.seal),
                        tsa_chain_pem=tsa.certificates_pem(),
                        seal_manifest=lambda data: sealer.seal(data, timestamp=stamp, revocation=lambda certs: crl))
        archive = S3Archive(endpoint, "bench", "bench", f"archive-{uuid.uuid4().hex[:8]}")
        client = Minio(endpoint, access_key="bench", secret_key="bench", secure=False, region="us-east-1")
        raw_bucket = f"raw-{uuid.uuid4().hex[:8]}"
        client.make_bucket(raw_bucket)
        until = (now + timedelta(days=365 * 15)).replace(microsecond=0)
        block = os.urandom(BLOCK)
        header = {"type": "bidproc.evidence-manifest", "bench": True}

        def archive_one(label: str, n: int, sizes: list[int]) -> float:
            started = time.perf_counter()
            write_package(archive, f"bench/{label}/{n}", 1, _bid(sizes, block), header, signer, until,
                          datetime.now(UTC))
            return time.perf_counter() - started

        def raw_one(label: str, n: int, sizes: list[int]) -> float:
            started = time.perf_counter()
            for m, size in enumerate(sizes):
                client.put_object(raw_bucket, f"{label}/{n}/{m}", cast(BinaryIO, _Reader(_chunks(block, size))),
                                  size, part_size=16 * MB)  # minio's default parallelism, as ours
            return time.perf_counter() - started

        def archive_bids(label: str, count: int, sizes: list[int]) -> float:
            return sum(archive_one(label, n, sizes) for n in range(count))

        def both(label: str, count: int, sizes: list[int]) -> tuple[float, float]:
            # Interleaved bid by bid, so that the load of a shared machine weighs on both alike.
            ours = raw = 0.0
            for n in range(count):
                ours += archive_one(label, n, sizes)
                raw += raw_one(label, n, sizes)
            return ours, raw

        overhead_n = max(1, min(20, small))
        overhead = archive_bids("empty", overhead_n, [0]) / overhead_n
        print(f"per-package overhead (manifest, B-LT seal with its timestamp, seal, timestamp, SHA256SUMS, retention): "
              f"{overhead * 1000:.0f} ms")
        for label, count, sizes in (("small", small, [200 * 1024] * 5), ("large", large, [large_mb * MB])):
            if not count:
                continue
            total_mb = count * sum(sizes) / MB
            ours, raw = both(label, count, sizes)
            data_only = ours - count * overhead
            without = f"{raw / data_only:.2f}x" if data_only > 0.05 * ours else "n/a (the overhead is all of it)"
            print(f"{label}: {count} bids x {len(sizes)} files, {total_mb:.0f} MB: "
                  f"{count / ours:.1f} packages/s, {total_mb / ours:.1f} MB/s archived; raw put "
                  f"{total_mb / raw:.1f} MB/s; speed {raw / ours:.2f}x of raw put "
                  f"(without the per-package overhead: {without})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="an S3 endpoint (default: a moto_server of our own)")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=1024)
    args = parser.parse_args()
    proc = None
    endpoint = args.endpoint
    if not endpoint:
        endpoint, proc = _moto()
    try:
        run(endpoint, args.small, args.large, args.large_mb)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
