"""The memory of a process and of those it started, read from /proc (Linux)."""

from __future__ import annotations

import os


def status_kb(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS: resident now; VmHWM: the peak resident set since
    the process started); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children(pid: int) -> list[int]:
    """The processes `pid` started (every thread's), as Linux lists them."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie not yet reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and line.split()[1] == "Z" for line in f)
    except (FileNotFoundError, ProcessLookupError):
        return True


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and those they started, and so on."""
    out = children(pid)
    for child in list(out):
        out.extend(descendants(child))
    return out


def tree_kb(pid: int, field: str) -> int | None:
    """`status_kb` summed over `pid` and every process under it (`eventmgmt serve` correlates in a
    child, which builds events in one of its own): for VmHWM, the sum of each one's own peak, an
    upper bound on their peak together."""
    own = status_kb(pid, field)
    if own is None:
        return None
    return own + sum(status_kb(c, field) or 0 for c in descendants(pid))
