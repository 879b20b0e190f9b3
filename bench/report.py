"""How a bench run prints its figures: one section per run, then one closing line. No pytest here.

A long run (bench/rush.py, bench/faults.py) prints each section as soon as its run ends (flushed: the
runs take minutes and are often watched through a pipe), so a run that fails later still shows what
the earlier ones measured.
"""

from __future__ import annotations

from collections.abc import Iterable


def section(title: str, lines: Iterable[str], seconds: float | None = None) -> None:
    """``== title (N s)`` and the run's lines, after a blank line."""
    took = f" ({seconds:.0f} s)" if seconds is not None else ""
    print(f"\n== {title}{took}", *lines, sep="\n", flush=True)


def closing(line: str) -> None:
    """The bench's one-line conclusion, set apart from the sections."""
    print(f"\n{line}", flush=True)
