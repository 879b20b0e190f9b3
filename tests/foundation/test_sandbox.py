"""Intake runs in a child process: a document that overruns its time or memory costs one verdict."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bidproc.config import ClamdSettings, Settings, load_settings, replace
from bidproc.domain import Document
from bidproc.encryption.stream import encrypt_bytes
from bidproc.errors import RETRY_CODES, BidprocError, Code
from bidproc.intake.limits import IntakeLimits
from bidproc.pipeline.outcomes import DocumentOutcome
from bidproc.pipeline.process import INTAKE_TASK, inspect_in
from bidproc.runtime import Runtime
from bidproc.sandbox.document import DocumentLimits, DocumentSandbox
from tests.intake.builders import pdf, slow_pdf, zip_of
from tests.intake.memory_bombs import pdf_bomb
from tests.services import ROOT


def _zip_of_zeros(size: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(size // (16 << 20)):
                member.write(bytes(16 << 20))
    return out.getvalue()


def _stored(tmp_path: Path, clamd: ClamdSettings, data: bytes, key: bytes | None = None
            ) -> tuple[Runtime, bytes, Document]:
    key = key or os.urandom(32)
    settings = replace(load_settings(env={}), service={"data_dir": str(tmp_path)},
                       clamd={"port": clamd.port, "timeout_seconds": 30})
    rt = Runtime(settings)
    object_key = f"tenders/t/bids/b/files/{hashlib.sha256(data).hexdigest()[:16]}.enc"
    rt.store.put_bytes(object_key, encrypt_bytes(key, data, context=object_key.encode()))
    name = "offre.zip" if data[:2] == b"PK" else "offre.pdf" if data[:4] == b"%PDF" else "offre.txt"
    doc = Document("d", "b", name, len(data), hashlib.sha256(data).hexdigest(), object_key)
    return rt, key, doc


def _sandbox(settings: Settings, key: bytes, limits: IntakeLimits, box: DocumentLimits | None = None
             ) -> DocumentSandbox:
    """The document sandbox as the pipeline starts it for a bid's intake."""
    return DocumentSandbox(INTAKE_TASK, (settings, key, limits), box or DocumentLimits())


def _inspect(sandbox: DocumentSandbox, doc: Document) -> DocumentOutcome:
    return inspect_in(sandbox, doc, "tenders/t/bids/b")


def test_documents_are_inspected_in_the_sandbox(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    rt, key, doc = _stored(tmp_path, clamd_settings, b"Offre technique\n")
    with _sandbox(rt.settings, key, IntakeLimits()) as sandbox:
        first = _inspect(sandbox, doc)
        pid = sandbox._proc.pid
        second = _inspect(sandbox, doc)
        assert sandbox._proc.pid == pid and pid != os.getpid()  # one child, reused
    assert first.verdict == second.verdict == "accepted" and first.code is None


def test_overrunning_time_or_memory_is_a_verdict_not_a_dead_worker(tmp_path: Path,
                                                                   clamd_settings: ClamdSettings) -> None:
    # The deadline runs from when the ready child gets the document (its start-up is not the document's
    # time): a PDF that takes seconds to parse, given half a second (and 0.2 s for its 2 MB).
    rt, key, slow = _stored(tmp_path, clamd_settings, slow_pdf())
    with _sandbox(rt.settings, key, IntakeLimits(), DocumentLimits(base_seconds=0.5)) as sandbox:
        result = _inspect(sandbox, slow)
    assert result.verdict == "rejected" and result.code == "parse.timeout"
    doc = _stored(tmp_path, clamd_settings, b"Offre technique\n", key)[2]
    # A member that inflates to 768 MiB in memory (the tender lets it), in a sandbox allowed 512 MiB.
    bomb = _stored(tmp_path, clamd_settings, _zip_of_zeros(768 << 20), key)[2]
    lenient = IntakeLimits(member_buffer_bytes=1 << 30, max_ratio=10_000.0)
    with _sandbox(rt.settings, key, lenient, DocumentLimits(memory_bytes=512 << 20)) as sandbox:
        result = _inspect(sandbox, bomb)
        assert result.verdict == "rejected" and result.code == "parse.crashed"
        assert "MemoryError" in result.message
        assert _inspect(sandbox, doc).verdict == "accepted"  # a fresh child
    # and this process, the worker, is unharmed: a normal sandbox still works
    with _sandbox(rt.settings, key, IntakeLimits()) as sandbox:
        assert _inspect(sandbox, doc).verdict == "accepted"


def test_a_sandbox_that_cannot_start_is_unavailable_not_a_verdict(tmp_path: Path,
                                                                  clamd_settings: ClamdSettings) -> None:
    # 64 MiB cannot even hold the intake code: no document was looked at, so none is judged
    rt, key, doc = _stored(tmp_path, clamd_settings, b"Offre technique\n")
    with _sandbox(rt.settings, key, IntakeLimits(), DocumentLimits(memory_bytes=64 << 20)) as sandbox:
        with pytest.raises(BidprocError) as raised:
            _inspect(sandbox, doc)
    assert raised.value.code is Code.PARSE_UNAVAILABLE and raised.value.code in RETRY_CODES


def test_a_child_that_died_between_documents_is_replaced_not_blamed(tmp_path: Path,
                                                                     clamd_settings: ClamdSettings) -> None:
    rt, key, doc = _stored(tmp_path, clamd_settings, b"Offre technique\n")
    with _sandbox(rt.settings, key, IntakeLimits()) as sandbox:
        assert _inspect(sandbox, doc).verdict == "accepted"
        idle = sandbox._proc
        idle.kill()  # e.g. the kernel's OOM killer, while no document was inside
        idle.join(10)
        assert _inspect(sandbox, doc).verdict == "accepted"
        assert sandbox._proc is not idle and sandbox._proc.is_alive()


# The worker side in a process of its own, whose address space is limited as `ulimit -v` would.
_WORKER = """
import json, resource, sys
from bidproc.config import load_settings, replace
from bidproc.errors import BidprocError
from bidproc.intake.limits import IntakeLimits
from bidproc.domain import Document
from bidproc.pipeline.process import INTAKE_TASK, inspect_in
from bidproc.sandbox.document import DocumentSandbox
args = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (args["limit"], args["limit"]))
settings = replace(load_settings(env={}), service={"data_dir": args["data_dir"]},
                   clamd={"port": args["clamd"], "timeout_seconds": 30})
try:
    # the default 3 GiB
    with DocumentSandbox(INTAKE_TASK, (settings, bytes.fromhex(args["key"]), IntakeLimits())) as sandbox:
        result = inspect_in(sandbox, Document(*args["doc"]), "tenders/t/bids/b")
        print(json.dumps([result.verdict, result.code, result.message]))
except BidprocError as exc:
    print(json.dumps(["error", exc.code.value, exc.message]))
"""


def _worker_under(limit: int, tmp_path: Path, clamd: ClamdSettings, data: bytes) -> list[str]:
    _, key, doc = _stored(tmp_path, clamd, data)
    fields = [doc.id, doc.bid_id, doc.name, doc.size, doc.sha256, doc.object_key]
    args = {"limit": limit, "data_dir": str(tmp_path), "clamd": clamd.port, "key": key.hex(), "doc": fields}
    proc = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    answer: list[str] = json.loads(proc.stdout)
    return answer


def test_sandbox_under_an_inherited_limit_lower_than_its_own(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    assert resource.getrlimit(resource.RLIMIT_AS)[1] == resource.RLIM_INFINITY  # the limit is the test's own
    for data in (pdf(), zip_of([("memoire.pdf", pdf()), ("a.txt", b"annexe\n")]), b"Offre technique\n"):
        assert _worker_under(1 << 30, tmp_path, clamd_settings, data)[:2] == ["accepted", None]
    verdict, code, message = _worker_under(1 << 30, tmp_path, clamd_settings, pdf_bomb("names", twice=True))
    assert (verdict, code) == ("rejected", "parse.crashed") and "lowered by the inherited" in message


def test_sandbox_in_too_small_an_environment_is_unavailable(tmp_path: Path, clamd_settings: ClamdSettings) -> None:
    for data in (pdf(), b"Offre technique\n"):
        verdict, code, message = _worker_under(200 << 20, tmp_path, clamd_settings, data)
        assert (verdict, code) == ("error", "parse.unavailable"), message
