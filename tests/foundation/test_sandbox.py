"""Intake runs in a child process: a document that overruns its time or memory costs one verdict."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bidproc.config import ClamdSettings, load_settings, replace
from bidproc.encryption.stream import encrypt_bytes
from bidproc.intake.limits import IntakeLimits
from bidproc.pipeline.sandbox import IntakeSandbox, SandboxLimits
from bidproc.runtime import Runtime


def _stored(tmp_path: Path, clamd: ClamdSettings, data: bytes) -> tuple[Runtime, bytes, dict[str, object]]:
    settings = replace(load_settings(env={}), service={"data_dir": str(tmp_path)},
                       clamd={"port": clamd.port, "timeout_seconds": 30})
    rt = Runtime(settings)
    key = os.urandom(32)
    object_key = "tenders/t/bids/b/files/d.enc"
    rt.store.put_bytes(object_key, encrypt_bytes(key, data, context=object_key.encode()))
    doc = {"doc_id": "d", "name": "offre.txt", "object_key": object_key, "sha256": hashlib.sha256(data).hexdigest(),
           "size": len(data), "prefix": "tenders/t/bids/b"}
    return rt, key, doc


def test_documents_are_inspected_in_the_sandbox(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    rt, key, doc = _stored(tmp_path, clamd_settings, b"Offre technique\n")
    with IntakeSandbox(rt.settings, key, IntakeLimits()) as sandbox:
        first = sandbox.inspect(**doc)  # type: ignore[arg-type]
        pid = sandbox._proc.pid
        second = sandbox.inspect(**doc)  # type: ignore[arg-type]
        assert sandbox._proc.pid == pid and pid != os.getpid()  # one child, reused
    assert first["verdict"] == second["verdict"] == "accepted" and first["code"] is None


def test_overrunning_time_or_memory_is_a_verdict_not_a_dead_worker(tmp_path: Path,
                                                                   clamd_settings: ClamdSettings) -> None:
    rt, key, doc = _stored(tmp_path, clamd_settings, b"Offre technique\n")
    with IntakeSandbox(rt.settings, key, IntakeLimits(), SandboxLimits(base_seconds=0.01)) as sandbox:
        result = sandbox.inspect(**doc)  # type: ignore[arg-type]
    assert result["verdict"] == "rejected" and result["code"] == "parse.timeout"
    with IntakeSandbox(rt.settings, key, IntakeLimits(), SandboxLimits(memory_bytes=64 << 20)) as sandbox:
        result = sandbox.inspect(**doc)  # type: ignore[arg-type]
        assert result["verdict"] == "rejected" and result["code"] == "parse.crashed"
    # and this process, the worker, is unharmed: a normal sandbox still works
    with IntakeSandbox(rt.settings, key, IntakeLimits()) as sandbox:
        assert sandbox.inspect(**doc)["verdict"] == "accepted"  # type: ignore[arg-type]
