"""An evidence package's files, read in place: a directory, or a ZIP of the same layout (nothing extracted)."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

STEP = 1 << 20


class PackageFiles(Protocol):
    def names(self) -> list[str]: ...

    def chunks(self, name: str) -> Iterator[bytes]: ...


class DirectoryFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def chunks(self, name: str) -> Iterator[bytes]:
        with (self.root / name).open("rb") as fh:
            while piece := fh.read(STEP):
                yield piece


class ZipFiles:
    """A ZIP read in place (nothing extracted); one top-level folder around the layout is allowed."""

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path)
        files = [i.filename for i in self.zf.infolist() if not i.is_dir()]
        tops = {n.split("/", 1)[0] for n in files}
        self.base = f"{tops.pop()}/" if "SHA256SUMS" not in files and len(tops) == 1 else ""
        self._names = sorted({n[len(self.base) :] for n in files if n.startswith(self.base)})
        # The same name twice: tools disagree on which entry counts (zipfile reads the last one).
        # Counted once (not files.count per name): a ZIP of many entries must not take quadratic time.
        self.duplicates = sorted(n[len(self.base) :] for n, k in Counter(files).items() if k > 1)

    def names(self) -> list[str]:
        return list(self._names)

    def chunks(self, name: str) -> Iterator[bytes]:
        with self.zf.open(self.base + name) as fh:
            while piece := fh.read(STEP):
                yield piece


def open_package(path: Path) -> PackageFiles:
    return DirectoryFiles(path) if path.is_dir() else ZipFiles(path)
