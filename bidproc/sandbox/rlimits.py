"""Resource limits for the sandboxes, lowered and never raised, and the check that the result is usable.

A sandbox child inherits its parent's limits: a container or a systemd unit (``LimitAS=``), or a shell
(``ulimit -v``), may already have set an address-space limit lower than the sandbox's own. An
unprivileged process cannot raise a hard limit, so asking for the configured one would fail and take
the child down before it saw a document; and a document must never be refused for that. So each limit
is the lower of the inherited (soft and hard) and the configured one.

Then the environment-or-document question: a child that cannot set its limits, import its code or
find enough address space left *before it is given a document* says so (:func:`unfit`), and the
caller answers ``parse.unavailable`` (retried later, exit 2 in ``bidproc check``) instead of a verdict.
Written by hand: no library computes "the lower of two rlimits" or a process's address-space headroom.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

MiB = 1 << 20
# Below this, an address-space limit imposed by the environment is a misconfiguration, not a policy:
# an interpreter with qpdf or our intake code loaded leaves too little to parse even ordinary files.
FLOOR_BYTES = 256 * MiB
# What a sandbox must still have free once its code is loaded, or even a small valid file could fail.
HEADROOM_BYTES = 64 * MiB
_INF = resource.RLIM_INFINITY


def _lowest(*values: int) -> int:
    finite = [v for v in values if v != _INF and v >= 0]
    return min(finite) if finite else _INF


def lower(which: int, soft: int, hard: int | None = None) -> tuple[int, int]:
    """Set ``which`` to at most (soft, hard), keeping any lower inherited value; return what was set."""
    old_soft, old_hard = resource.getrlimit(which)
    new_hard = _lowest(old_hard, soft if hard is None else hard)
    new_soft = _lowest(old_soft, soft, new_hard)
    resource.setrlimit(which, (new_soft, new_hard))
    return new_soft, new_hard


@dataclass(frozen=True)
class MemoryBudget:
    configured: int
    limit: int  # the address-space limit now in force
    inherited: int | None  # the inherited limit, when it was lower than the configured one

    def describe(self) -> str:
        if self.inherited is None:
            return f"{self.limit} bytes"
        return f"{self.limit} bytes (the configured {self.configured} lowered by the inherited address-space limit)"


def limit_memory(configured: int) -> MemoryBudget:
    """Lower RLIMIT_AS to ``configured`` (hard limit too: a child may not raise it back)."""
    old_soft, old_hard = resource.getrlimit(resource.RLIMIT_AS)
    inherited = _lowest(old_soft, old_hard)
    soft, _ = lower(resource.RLIMIT_AS, configured)
    return MemoryBudget(configured, soft, inherited if inherited != _INF and inherited < configured else None)


def address_space_in_use() -> int:
    """This process's virtual size (what RLIMIT_AS counts); 0 where /proc is not available."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def unfit(budget: MemoryBudget) -> str | None:
    """Why this sandbox, its code loaded and no document yet, cannot judge a document; None if it can."""
    if budget.inherited is not None and budget.inherited < FLOOR_BYTES:
        return (f"the environment limits the address space to {budget.inherited >> 20} MiB, below the "
                f"{FLOOR_BYTES >> 20} MiB the parser sandbox needs (ulimit -v, LimitAS=, container limits)")
    used = address_space_in_use()
    if used and budget.limit - used < HEADROOM_BYTES:
        return (f"the parser sandbox has {max(0, budget.limit - used) >> 20} MiB of its {budget.describe()} "
                f"left once loaded; it needs {HEADROOM_BYTES >> 20} MiB")
    return None
