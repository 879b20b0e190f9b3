"""Benchmark: offline validation of N signed PDFs (B-T and B-LT, 1 to 5 signatures each).

Prints signatures/s for ``bidproc.signature.validate_files`` (full report: ETSI indication, level,
modifications, French rule) and for bare pyhanko ``async_validate_pdf_signature`` on the same files
in the same run, and their ratio (target: within 1.5x). With ``--offline`` (the default) every socket
connect is refused and counted: the count must be 0.

On a shared, loaded machine a single pair of timings is noise: ``--rounds N`` times both sides N times,
interleaved, and reports the ratio of the best times (the least disturbed run of each) with the range
of the per-round ratios. For a load-independent figure, count instructions instead (README, "Benchmarks").

    .venv/bin/python -m bench.verify --count 200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from bidproc.signature.policy import ValidationPolicy
from bidproc.signature.report import Indication
from bidproc.signature.validate import validate_files
from tests.pki import TestPKI, build_pki, serve
from tests.services import free_port
from tests.signature.signing import make_pdf, sign_pdf


def make_corpus(pki: TestPKI, count: int) -> dict[str, bytes]:
    """Sequential on purpose: signing is GIL-bound here (the TSA and OCSP responder run in-process),
    threads made it slower."""
    out: dict[str, bytes] = {}
    base = make_pdf("Offre de prix", pages=2)
    for i in range(count):
        level = "B-T" if i % 2 == 0 else "B-LT"
        data = base
        for n in range(1 + i % 5):
            data = sign_pdf(data, pki, level=level, field=f"Signature{n + 1}")
        out[f"bid-{i:04d}-{level}.pdf"] = data
        if (i + 1) % 20 == 0:
            print(f"  signed {i + 1}/{count}", file=sys.stderr)
    return out


@contextmanager
def no_network() -> Iterator[list[Any]]:
    attempts: list[Any] = []
    original = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network access during offline validation")

    socket.socket.connect = refuse  # type: ignore[method-assign, assignment]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def bidproc_run(files: dict[str, bytes], policy: ValidationPolicy) -> tuple[int, int]:
    sigs = passed = 0
    for name, data in files.items():  # one call per file, as the pipeline does per document
        for s in validate_files({name: data}, policy)[name].signatures:
            sigs += 1
            passed += s.indication is Indication.TOTAL_PASSED
    return sigs, passed


def pyhanko_run(files: dict[str, bytes], pki: TestPKI) -> tuple[int, int]:
    sigs = passed = 0

    async def one(data: bytes) -> tuple[int, int]:
        reader = PdfFileReader(io.BytesIO(data))
        n = ok = 0
        for emb in reader.embedded_signatures:
            vc = ValidationContext(trust_roots=[pki.cert("root")], allow_fetching=False)
            status = await async_validate_pdf_signature(emb, signer_validation_context=vc)
            n += 1
            ok += bool(status.bottom_line)
        return n, ok

    for data in files.values():
        n, ok = asyncio.run(one(data))
        sigs, passed = sigs + n, passed + ok
    return sigs, passed


def timed(fn: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
    start = time.perf_counter()
    sigs, passed = fn()
    return time.perf_counter() - start, sigs, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--online", action="store_true", help="let validation fetch revocation data")
    parser.add_argument("--rounds", type=int, default=1, help="time both sides this many times, interleaved")
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        pki = build_pki(Path(tmp), port, free_port())
        with serve(pki, port):
            start = time.perf_counter()
            files = make_corpus(pki, args.count)
            print(f"made {len(files)} signed PDFs in {time.perf_counter() - start:.1f}s", file=sys.stderr)
            policy = ValidationPolicy(trust_anchors=(pki.root_der,), offline=not args.online)
            rounds: list[tuple[tuple[float, int, int], tuple[float, int, int]]] = []
            guard: AbstractContextManager[list[Any]] = nullcontext([]) if args.online else no_network()
            with guard as attempts:
                for _ in range(max(1, args.rounds)):
                    rounds.append((timed(lambda: bidproc_run(files, policy)), timed(lambda: pyhanko_run(files, pki))))
    ours = min((r[0] for r in rounds), key=lambda t: t[0])
    bare = min((r[1] for r in rounds), key=lambda t: t[0])
    (t_ours, n_ours, ok_ours), (t_bare, n_bare, ok_bare) = ours, bare
    ratios = [o[0] / b[0] for o, b in rounds]
    print(
        f"bidproc  : {n_ours} signatures in {t_ours:.2f}s = {n_ours / t_ours:.1f} signatures/s ({ok_ours} TOTAL_PASSED)"
    )
    print(
        f"pyhanko  : {n_bare} signatures in {t_bare:.2f}s = {n_bare / t_bare:.1f} signatures/s ({ok_bare} bottom_line)"
    )
    print(f"ratio    : {t_ours / t_bare:.2f}x bare pyhanko validate_pdf_signature (target <= 1.5x)")
    if len(rounds) > 1:
        print(f"rounds   : {len(rounds)}, per-round ratios {min(ratios):.2f}x to {max(ratios):.2f}x (best times above)")
    print(f"network  : {len(attempts)} connection attempts during offline validation")
    expected = sum(1 + i % 5 for i in range(args.count) if i % 2 == 1)  # the B-LT files' signatures
    stale = [o[2] for o, _ in rounds if o[2] != expected]
    if stale:
        print(
            f"warning  : {expected} B-LT signatures should pass, a round passed {min(stale)}: the test PKI's OCSP "
            "answers live 10 minutes and went stale during a slow run; use a smaller --count or fewer --rounds"
        )
    print(
        "note     : offline, B-T signatures carry no revocation data: bidproc says INDETERMINATE/TRY_LATER "
        "(hard fail), bare pyhanko's default soft-fail lets them pass"
    )
    return 0 if n_ours == n_bare and not attempts and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
