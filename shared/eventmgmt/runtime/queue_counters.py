"""The durable queue's bookkeeping, kept in memory so that the backlog is known without a query:
what was appended, what left, and who waits for either.

`LocalCounters` serves one process (the queue's appends and its drain in threads of one process).
`SharedCounters` serves two: `serve` accepts in one process and correlates in another
(runtime/correlation_process.py). Each figure then has one writer: the accepting process counts what
it appended, the correlating one what it removed, and the backlog is their difference. No figure is
written by both, so no cross-process lock is needed; a reader reads the removals first, so the
difference it computes is never negative. An append wakes the drain with a byte on a pipe, not a
multiprocessing.Event: a process killed while waiting on one leaves its condition waiting for it, and
the next append here would block for ever."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any, Protocol

# NOTE: how often a request waiting for the other process's drain looks again (GET /api/queue?wait).
POLL_SECONDS = 0.005


class Counters(Protocol):
    """What the durable queue keeps of itself: rows and events waiting, the last sequence number
    appended and the last one drained, dead letters, refusals."""

    @property
    def rows(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def last(self) -> int: ...
    @property
    def drained(self) -> int: ...
    @property
    def dead(self) -> int: ...
    @property
    def refused(self) -> int: ...

    def appended(self, last: int, rows: int, events: int) -> None: ...
    def removed(self, rows: int, events: int, through: int) -> None: ...
    def dead_lettered(self, rows: int) -> None: ...
    def refuse(self) -> None: ...
    def wait_for_work(self, timeout: float) -> bool: ...
    def wait_drained(self, target: int | None, timeout: float) -> bool: ...


class LocalCounters:
    def __init__(self, rows: int, events: int, last: int, drained: int, dead: int) -> None:
        self.rows, self.events, self.last, self.drained, self.dead = rows, events, last, drained, dead
        self.refused = 0
        self._changed = threading.Condition(threading.Lock())

    def appended(self, last: int, rows: int, events: int) -> None:
        with self._changed:
            self.last = last
            self.rows += rows
            self.events += events
            self._changed.notify_all()

    def removed(self, rows: int, events: int, through: int) -> None:
        with self._changed:
            self.rows -= rows
            self.events -= events
            self.drained = max(self.drained, through)
            self._changed.notify_all()

    def dead_lettered(self, rows: int) -> None:
        with self._changed:
            self.dead += rows

    def refuse(self) -> None:
        self.refused += 1

    def wait_for_work(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.rows > 0, timeout)

    def wait_drained(self, target: int | None, timeout: float) -> bool:
        with self._changed:
            goal = self.last if target is None else target
            return self._changed.wait_for(lambda: self.drained >= goal, timeout)


# The shared array's slots: the accepting process writes the first four, the correlating one the rest
# (STARTED: the accepting process clears it before it starts a correlating process).
_APPENDED_ROWS, _APPENDED_EVENTS, _LAST, _REFUSED, _REMOVED_ROWS, _REMOVED_EVENTS, _DRAINED, _DEAD, _RELEASES = range(9)
_STARTED = 9
# NOTE: the correlating process's build process (build_ahead.py): rows it built, rows the drain
# built itself, times it was started again.
_BUILT_AHEAD, _BUILT_IN_DRAIN, _BUILD_RESTARTS = 10, 11, 12


class SharedCounters:
    """`LocalCounters` across the accepting process and the correlating one (created by the first,
    handed to the second when it is started: multiprocessing shares the memory and the event)."""

    def __init__(self, start: Counters, ctx: Any = None) -> None:
        ctx = ctx or multiprocessing.get_context("spawn")
        self._a = ctx.RawArray("q", 13)
        self._a[_APPENDED_ROWS], self._a[_APPENDED_EVENTS] = start.rows, start.events
        self._a[_LAST], self._a[_DRAINED], self._a[_DEAD] = start.last, start.drained, start.dead
        self._a[_REFUSED] = start.refused
        self._lock = threading.Lock()  # NOTE: this process's writers (request threads, the drain)
        self._waker: Any = None
        self._woken_by: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_a": self._a}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._waker = self._woken_by = None

    def wake_with(self, conn: Any) -> None:
        """The appending side: each append writes a byte here (never blocking: a full pipe already
        wakes the reader). Replaced when the draining process is started again."""
        os.set_blocking(conn.fileno(), False)
        earlier, self._waker = self._waker, conn
        if earlier is not None:
            earlier.close()

    def woken_by(self, conn: Any) -> None:
        """The draining side: where `wait_for_work` waits."""
        os.set_blocking(conn.fileno(), False)
        self._woken_by = conn

    @property
    def rows(self) -> int:
        removed = self._a[_REMOVED_ROWS]
        return max(0, int(self._a[_APPENDED_ROWS] - removed))

    @property
    def events(self) -> int:
        removed = self._a[_REMOVED_EVENTS]
        return max(0, int(self._a[_APPENDED_EVENTS] - removed))

    @property
    def last(self) -> int:
        return int(self._a[_LAST])

    @property
    def drained(self) -> int:
        return int(self._a[_DRAINED])

    @property
    def dead(self) -> int:
        return int(self._a[_DEAD])

    @property
    def refused(self) -> int:
        return int(self._a[_REFUSED])

    @property
    def releases(self) -> int:
        return int(self._a[_RELEASES])

    def appended(self, last: int, rows: int, events: int) -> None:
        with self._lock:
            self._a[_APPENDED_ROWS] += rows
            self._a[_APPENDED_EVENTS] += events
            self._a[_LAST] = last
        waker = self._waker
        if waker is not None:
            try:
                os.write(waker.fileno(), b"\x01")
            except OSError:
                pass  # NOTE: full (the reader is awake anyway) or closed (it is being started again)

    def removed(self, rows: int, events: int, through: int) -> None:
        with self._lock:
            self._a[_REMOVED_ROWS] += rows
            self._a[_REMOVED_EVENTS] += events
            self._a[_DRAINED] = max(self._a[_DRAINED], through)

    def dead_lettered(self, rows: int) -> None:
        with self._lock:
            self._a[_DEAD] += rows

    def refuse(self) -> None:
        with self._lock:
            self._a[_REFUSED] += 1

    @property
    def started(self) -> bool:
        """Whether the correlating process has built its stages and drains."""
        return bool(self._a[_STARTED])

    @started.setter
    def started(self, value: bool) -> None:
        self._a[_STARTED] = int(value)

    def released(self) -> None:
        with self._lock:
            self._a[_RELEASES] += 1

    def built(self, ahead: int = 0, in_drain: int = 0, restarts: int = 0) -> None:
        """What the correlating process's build process did (runtime/build_ahead.py)."""
        with self._lock:
            self._a[_BUILT_AHEAD] += ahead
            self._a[_BUILT_IN_DRAIN] += in_drain
            self._a[_BUILD_RESTARTS] += restarts

    @property
    def build_counts(self) -> tuple[int, int, int]:
        """Rows built ahead, rows built in the drain, build process restarts."""
        return int(self._a[_BUILT_AHEAD]), int(self._a[_BUILT_IN_DRAIN]), int(self._a[_BUILD_RESTARTS])

    def resync(self, rows: int, events: int, drained: int) -> None:
        """After the correlating process died: what the queue holds, as counted in it (the caller
        holds the queue's append lock, so nothing is appended meanwhile)."""
        with self._lock:
            self._a[_REMOVED_ROWS] = self._a[_APPENDED_ROWS] - rows
            self._a[_REMOVED_EVENTS] = self._a[_APPENDED_EVENTS] - events
            self._a[_DRAINED] = drained

    def wait_for_work(self, timeout: float) -> bool:
        if self.rows > 0:
            return True
        woken_by = self._woken_by
        if woken_by is None:
            time.sleep(min(timeout, POLL_SECONDS))
            return self.rows > 0
        # NOTE: an append after the look above has written its byte by now, so poll returns at once.
        if woken_by.poll(timeout):
            try:
                os.read(woken_by.fileno(), 65536)
            except OSError:
                pass
        return self.rows > 0

    def wait_drained(self, target: int | None, timeout: float) -> bool:
        goal = self.last if target is None else target
        deadline = time.monotonic() + timeout
        while self.drained < goal:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True
