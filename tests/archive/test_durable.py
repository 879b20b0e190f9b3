"""A rename, a link or a new directory survives a power loss only once its parent directory is fsynced.

A real power loss cannot be staged in a test (it would take a VM and a cut of its virtual disk), so this
checks what can be checked for real: the system calls the store and the archive make, traced by strace in
a subprocess, show each new name (renamed, linked, made) followed by an fsync of the directory holding it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.services import ROOT, unavailable

SCRIPT = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from bidproc.archive.store import LocalStore
from bidproc.archive.worm import LocalArchive
root = Path(sys.argv[1])
LocalStore(root / "store").put_bytes("s1/s2/object", b"bytes")
LocalArchive(root / "archive").put("a1/a2/object", (b"evidence",), 8, datetime(2045, 1, 1, tzinfo=UTC))
"""

CALL = re.compile(r"^(?:\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)")  # "<pid> call(args) = result" of strace -f -o


def _trace(tmp_path: Path) -> list[tuple[str, str]]:
    strace = shutil.which("strace")
    if not strace:
        unavailable("strace, to see the fsync of directories")
    out = tmp_path / "trace"
    subprocess.run(
        [
            strace,
            "-f",
            "-y",
            "-qq",
            "-o",
            str(out),
            "-e",
            "trace=rename,renameat,renameat2,link,linkat,mkdir,mkdirat,fsync",
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path),
        ],
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    calls = []
    for line in out.read_text().splitlines():
        m = CALL.match(line)
        if m and m.group(3) == "0":
            calls.append((m.group(1), m.group(2)))
    return calls


def _synced_after(calls: list[tuple[str, str]], name: Path) -> bool:
    """The call making ``name`` (a rename, a link, a mkdir), then an fsync of its directory."""
    made = next(
        i
        for i, (call, args) in enumerate(calls)
        if call.startswith(("rename", "link", "mkdir")) and f'"{name}"' in args
    )
    return any(call == "fsync" and f"<{name.parent}>" in args for call, args in calls[made + 1 :])


def test_new_names_are_followed_by_their_directory_fsync(tmp_path: Path) -> None:
    calls = _trace(tmp_path)
    for name in (
        "store",
        "store/.incoming",
        "archive",
        "archive/.locks",
        "store/s1",
        "store/s1/s2",
        "store/s1/s2/object",
        "archive/a1",
        "archive/a1/a2",
        "archive/a1/a2/object",
    ):
        assert _synced_after(calls, tmp_path / name), (name, calls)
    # the retention record of the archived object, replaced into .locks, is durable too
    lock = next(args for call, args in calls if call.startswith("rename") and "/.locks/" in args)
    assert lock and any(call == "fsync" and f"<{tmp_path / 'archive/.locks'}>" in args for call, args in calls)
