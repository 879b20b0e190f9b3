"""Sealing and unsealing run in constant memory: peak RSS does not grow with the size of the stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.services import ROOT

CHILD = textwrap.dedent("""
    import hashlib, io, json, os, sys, tempfile
    from bidproc.encryption.envelope import seal, unseal
    from cryptography.hazmat.primitives.asymmetric import ec
    from tests.encryption.conftest import make_cert

    MB = 1 << 20
    BLOCK = os.urandom(MB)

    class Source:
        '''A generated stream of ``size`` bytes (never held whole), like an upload arriving.'''
        def __init__(self, size):
            self.left, self.sha, self.n = size, hashlib.sha256(), 0
        def read(self, n):
            n = min(n, self.left, MB)
            piece = (self.n.to_bytes(8, "big") + BLOCK[8:])[:n]
            self.left -= n; self.n += 1; self.sha.update(piece)
            return piece

    class Sink:
        def __init__(self):
            self.sha, self.size = hashlib.sha256(), 0
        def write(self, data):
            self.sha.update(data); self.size += len(data)

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "memory")
    seal(io.BytesIO(os.urandom(65536)), io.BytesIO(), [cert])  # warm up: imports and first allocations
    base = hwm()
    size = int(sys.argv[1]) * MB
    src = Source(size)
    with tempfile.TemporaryFile() as sealed:
        info = seal(src, sealed, [cert])
        sealed.seek(0)
        sink = Sink()
        unseal(sealed, sink, key, cert)
    assert info.size == sink.size == size and info.sha256 == sink.sha.hexdigest() == src.sha.hexdigest()
    print(json.dumps({"base": base, "peak": hwm()}))
""")


def _peak(size_mb: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(size_mb)], env=env, capture_output=True, text=True,
                         check=True, timeout=240).stdout
    result: dict[str, float] = json.loads(out)
    return result


@pytest.mark.slow
def test_peak_rss_does_not_grow_with_size() -> None:
    small, large = _peak(20), _peak(200)
    # A few MB over the warmed-up baseline (1 MiB chunks, one plaintext and one ciphertext buffer each way)
    assert large["peak"] - large["base"] < 24, large
    assert large["peak"] - small["peak"] < 8, (small, large)  # 10x the data, same memory
