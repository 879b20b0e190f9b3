"""The parser child: a timeout or a crash there is one file's verdict, and the caller carries on."""

from __future__ import annotations

import time

from bidproc.domain import Verdict
from bidproc.errors import Code
from bidproc.intake.inspect import IntakeLimits
from bidproc.sandbox import SandboxFailure
from bidproc.sandbox.parser import ParserLimits, run_parser
from tests.intake.builders import pdf, slow_pdf
from tests.intake.conftest import Check


def test_parser_timeout_is_a_verdict(check: Check) -> None:
    started = time.monotonic()
    verdict = check("offre.pdf", slow_pdf(), IntakeLimits(parse_timeout_seconds=1))
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "parse.timeout")
    assert time.monotonic() - started < 6
    assert check("offre.pdf", pdf()).verdict is Verdict.ACCEPTED  # and the next file is fine


def test_parser_out_of_memory_is_a_verdict(check: Check) -> None:
    # an embedded file that inflates to 256 MiB, in a child allowed 200 MiB of address space
    bomb = pdf(attachment=("zeros.bin", bytes(256 << 20)))
    assert len(bomb) < 2 << 20
    verdict = check("offre.pdf", bomb, IntakeLimits(parse_memory_bytes=200 << 20))
    assert (verdict.verdict, verdict.code) == (Verdict.REJECTED, "parse.crashed")
    assert check("offre.pdf", pdf()).verdict is Verdict.ACCEPTED


def test_cpu_bound_child_is_stopped_by_rlimit() -> None:
    bounds = ParserLimits(cpu_seconds=1, memory_bytes=1 << 30, wall_seconds=30, max_reply_bytes=1 << 20)
    started = time.monotonic()
    try:
        run_parser("bidproc.intake.probes:probe_spin", b"", bounds)
    except SandboxFailure as failure:
        assert failure.code is Code.PARSE_TIMEOUT
    else:
        raise AssertionError("the spinning child was not stopped")
    assert time.monotonic() - started < 10


def test_blocked_child_is_stopped_by_its_alarm() -> None:
    bounds = ParserLimits(cpu_seconds=1, memory_bytes=1 << 30, wall_seconds=1, max_reply_bytes=1 << 20)
    started = time.monotonic()
    try:
        run_parser("bidproc.intake.probes:probe_sleep", b"", bounds)
    except SandboxFailure as failure:
        assert failure.code is Code.PARSE_TIMEOUT
    else:
        raise AssertionError("the sleeping child was not stopped")
    assert time.monotonic() - started < 5


def test_crashing_child() -> None:
    bounds = ParserLimits(cpu_seconds=5, memory_bytes=1 << 30, wall_seconds=30, max_reply_bytes=1 << 20)
    try:
        run_parser("bidproc.intake.probes:probe_crash", b"", bounds)
    except SandboxFailure as failure:
        assert failure.code is Code.PARSE_CRASHED
    else:
        raise AssertionError("the crash was not reported")


def test_child_cannot_write_files(tmp_path: object) -> None:
    bounds = ParserLimits(cpu_seconds=5, memory_bytes=1 << 30, wall_seconds=30, max_reply_bytes=1 << 20)
    header, _ = run_parser("bidproc.intake.probes:probe_write", str(tmp_path).encode(), bounds)
    assert header == {"wrote": False}


def test_round_trip_of_blobs() -> None:
    bounds = ParserLimits(cpu_seconds=5, memory_bytes=1 << 30, wall_seconds=30, max_reply_bytes=1 << 20)
    header, blobs = run_parser("bidproc.intake.probes:probe_echo", b"abc\x00def", bounds)
    assert header == {"n": 7} and blobs == [b"abc\x00def", b""]


def _failure(task: str, data: bytes, bounds: ParserLimits) -> SandboxFailure:
    try:
        run_parser(task, data, bounds)
    except SandboxFailure as failure:
        return failure
    raise AssertionError("the failure was not reported")


def test_task_failure_is_reported_with_its_cause() -> None:
    bounds = ParserLimits(cpu_seconds=5, memory_bytes=1 << 30, wall_seconds=30, max_reply_bytes=1 << 20)
    failure = _failure("bidproc.intake.probes:probe_raise", b"x", bounds)
    assert failure.code is Code.PARSE_CRASHED and "ValueError" in failure.message
    # A task that cannot even be loaded never saw the input: the installation's fault, not the file's.
    for task in ("bidproc.intake.probes:probe_no_such_probe", "bidproc.intake.no_such_module:task"):
        failure = _failure(task, b"", bounds)
        assert failure.code is Code.PARSE_UNAVAILABLE and "Error" in failure.message


def test_memory_overrun_after_the_handshake_is_the_inputs_verdict() -> None:
    bounds = ParserLimits(cpu_seconds=10, memory_bytes=256 << 20, wall_seconds=30, max_reply_bytes=1 << 20)
    for size in (300 << 20, 2 << 30):
        failure = _failure("bidproc.intake.probes:probe_hog", str(size).encode(), bounds)
        assert failure.code is Code.PARSE_CRASHED and str(256 << 20) in failure.message
    assert run_parser("bidproc.intake.probes:probe_hog", str(100 << 20).encode(), bounds)[0] == {"n": 100 << 20}


def test_a_configured_limit_too_small_for_the_sandbox_itself_is_unavailable() -> None:
    # the zygote's interpreter with qpdf loaded takes ~40 MiB: 48 MiB leaves no room for any document
    bounds = ParserLimits(cpu_seconds=5, memory_bytes=48 << 20, wall_seconds=30, max_reply_bytes=1 << 20)
    failure = _failure("bidproc.intake.probes:probe_echo", b"tiny", bounds)
    assert failure.code is Code.PARSE_UNAVAILABLE and "needs 64 MiB" in failure.message


def test_many_parses_in_a_row_stay_fast(check: Check) -> None:
    started = time.monotonic()
    for _ in range(20):
        assert check("offre.pdf", pdf()).verdict is Verdict.ACCEPTED
    assert time.monotonic() - started < 10  # a fork from the zygote, not an interpreter start, per PDF
