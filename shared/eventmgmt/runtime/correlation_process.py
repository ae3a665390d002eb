"""`serve` correlates in a process of its own.

In one process, ingest's request threads and the drain share one interpreter lock: while a storm
is being correlated, every webhook waits for it at each of its hand-overs between threads, and took
1.3-1.8x Alertmanager's time (docs/benchmarks.md, seventh pass). So `serve` runs two processes:
this one answers HTTP and appends to the durable queue (runtime/app.py, role "accept"), and a child
started here drains the queue into enrich, correlate, route and archive (role "correlate"). They
share the queue's file and its counters (queue_counters.SharedCounters: the backlog bound, the
drain's wake-up, GET /api/queue?wait), the child's stream clock (MirroredClock), and a pipe that
carries what an operator's action here announces (an acknowledgement, a maintenance window's change
record) to the child's route and archive.

Failure handling: a child that dies is started again (the queue is counted again first: what it had
taken and not removed is handed on again, and correlation recognises the events it already
stored). A child whose parent dies (kill -9, the OOM killer) sees its pipe close, finishes the
delivery in hand and exits within ORPHAN_STOP_SECONDS; the next `serve` on the home waits for it
(a lock file), so two drains never take the same queue. The child ignores SIGINT and SIGTERM (a
terminal's Ctrl-C and systemd reach every process of the group): only its parent stops it."""

from __future__ import annotations

import fcntl
import gc
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import MAX_SKEW, StreamClock, utcnow
from ..logjson import log_json
from ..settings import Settings
from .operator_changes import OPERATOR_CHANGES
from .queue_counters import SharedCounters

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

    from ..incident import CorrelatedMessage
    from .app import Runtime
    from .durable_queue import DurableQueue

log = logging.getLogger("eventmgmt")

LOCK_FILE = "correlate.lock"
# NOTE: how long a child whose parent died may take to stop: the delivery in hand, and the pages of
# what it correlated. The next `serve` on the home waits that long at most for it.
ORPHAN_STOP_SECONDS = 2.0
# NOTE: past `close`'s own deadline, how long the child may take before it is killed.
STOP_GRACE_SECONDS = 5.0
# A child that dies is started again after this, doubling while it keeps dying within a minute.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
CLOCK_EVERY = 0.2
# NOTE: the correlating process's niceness. On two cores shared with a sender, the drain at the same
# priority took CPU from the requests: storm rounds sent back to back were accepted at a median 0.90x
# Alertmanager's with it at 0 and 1.13x at 10 (in one process, stepping aside: 1.23-1.43x); storms
# sent in turns with Alertmanager's requests, 0.88x at either, against 0.59-0.69x in one process.
NICE = 10


def hold_home(home: Path) -> int:
    """Wait until no process of an earlier `serve` correlates on `home` (one left by a killed parent
    finishes first), then hold the home, shared with the child started here. Returns the lock's file
    descriptor, held until the process ends."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log_json(
            log,
            "WARNING",
            "waiting for the correlating process of an earlier eventmgmt serve on this home to stop",
            home=str(home),
        )
        fcntl.flock(fd, fcntl.LOCK_EX)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


class MirroredClock:
    """The child's stream clock (clock.StreamClock), as it last published it: what /healthz shows
    and what an operator's acknowledgement is dated with here. At most CLOCK_EVERY seconds old."""

    def __init__(self, state: Any, wall: Callable[[], datetime] = utcnow, skew: timedelta = MAX_SKEW) -> None:
        self._state = state  # NOTE: [latest event time (epoch seconds, NaN before any), its time.monotonic()]
        self._wall = wall
        self._skew = skew

    def __call__(self) -> datetime:
        wall = self._wall()
        mark, seen = self._state[0], self._state[1]
        if math.isnan(mark):
            return wall
        at = datetime.fromtimestamp(mark, UTC) + timedelta(seconds=time.monotonic() - seen)
        return min(at, wall + self._skew)


class CorrelationProcess:
    """The parent's handle on the child: started, watched, started again, stopped."""

    def __init__(self, settings: Settings, queue: DurableQueue, ctx: Any = None) -> None:
        self.settings = settings
        self.queue = queue
        self._ctx = ctx or multiprocessing.get_context("spawn")
        self.counters = queue.share(self._ctx)
        self._clock_state = self._ctx.RawArray("d", [math.nan, 0.0])
        self.clock = MirroredClock(self._clock_state)
        self._send = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._stopping = threading.Event()
        self._closed = False
        self._watcher: threading.Thread | None = None
        # NOTE: only the watcher waits for the child (reaps it): a second thread waiting too
        # (is_alive, join) could reap it first and leave the other taking it for alive.
        self._running = False
        self.restarts = 0

    # --- starting and watching ------------------------------------------------------------------
    def start(self) -> CorrelationProcess:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="eventmgmt-correlate-watch", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        woken, wake = self._ctx.Pipe(duplex=False)
        self.counters.started = False
        # NOTE: daemonic, so that an interpreter exit here stops it (SIGTERM) instead of waiting for it.
        proc = self._ctx.Process(
            target=run,
            args=(self.settings, self.counters, self._clock_state, receive, woken),
            name="eventmgmt-correlate",
            daemon=True,
        )
        proc.start()
        # NOTE: the child's ends only, so that the child sees EOF when this process dies
        receive.close()
        woken.close()
        self.counters.wake_with(wake)
        with self._send:
            earlier, self._proc, self._conn = self._conn, proc, send
        self._running = True
        if earlier is not None:
            earlier.close()  # NOTE: the pipe to a child that died

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Whether correlation is running or being started: the child, or the thread that starts it
        again. Deliveries are taken meanwhile (queued)."""
        return self._watcher is not None and self._watcher.is_alive() and not self._stopping.is_set()

    @property
    def draining(self) -> bool:
        """Whether the child drains now: not for a second or so after a start, while it imports and
        builds its stages (GET /readyz reports that as degraded)."""
        return self._running and self.counters.started

    @property
    def releases(self) -> int:
        return self.counters.releases

    @property
    def build_counts(self) -> tuple[int, int, int]:
        return self.counters.build_counts

    def _watch(self) -> None:
        delay = RESTART_DELAY
        while True:
            proc, started = self._proc, time.monotonic()
            proc.join()
            self._running = False
            if self._stopping.is_set():
                return
            delay = RESTART_DELAY if time.monotonic() - started > 60 else min(MAX_RESTART_DELAY, delay * 2)
            log_json(
                log,
                "ERROR",
                "the correlating process exited; starting another (accepted deliveries wait in the queue)",
                exitcode=proc.exitcode,
                restarts=self.restarts,
                retry_in=delay,
            )
            self.queue.resync()
            if self._stopping.wait(delay):
                return
            self._spawn()
            self.restarts += 1

    # --- talking to it --------------------------------------------------------------------------
    def forward(self, messages: list[CorrelatedMessage]) -> None:
        """What this process's correlate stage announced (an acknowledgement, a resolution) or the
        dashboard recorded (a maintenance window's change), to the child's route and archive: queued
        durably, then sent over the pipe at once; the child handles whichever copy it gets first
        (runtime/operator_changes.py), and a child started after this one died gets the queued one."""
        self._queue(messages)
        with self._send:
            try:
                if self._conn is not None:
                    self._conn.send(("correlated", list(messages)))
            except (OSError, ValueError):
                pass  # NOTE: the child is down; the queued copy waits for the next one

    def forward_encoded(self, ce: CloudEvent) -> None:
        from ..transport.messages import decode_correlated

        self.forward(decode_correlated(ce, "correlating-process"))

    def _queue(self, messages: list[CorrelatedMessage]) -> None:
        from ..transport.messages import correlated_messages

        try:
            self.queue.append(OPERATOR_CHANGES, correlated_messages(messages))
        except Exception as err:  # NOTE: the queue's disk failing; route still pages it at its catch-up
            log_json(
                log,
                "ERROR",
                "an operator's change could not be queued for the correlating process: only the pipe carries "
                "it (route sends it at its next catch-up if the child misses it; the archive would not keep it)",
                error=f"{type(err).__name__}: {str(err)[:300]}",
            )

    def close(self, timeout: float = 30.0) -> None:
        """Stop the child within `timeout`: the delivery in hand, then route's drain (serving.py)."""
        self._stopping.set()
        if self._closed or self._proc is None:
            return
        self._closed = True
        with self._send:
            try:
                self._conn.send(("stop", timeout))
            except (OSError, ValueError):
                pass
        watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout + STOP_GRACE_SECONDS)
        if self._running:
            log_json(log, "ERROR", "the correlating process did not stop in time: killed", pid=self._proc.pid)
            self._proc.kill()
            if watcher is not None:
                watcher.join(5)
        with self._send:
            self._conn.close()


# --- the child ------------------------------------------------------------------------------------
def run(settings: Settings, counters: SharedCounters, clock_state: Any, conn: Any, woken: Any) -> None:
    """The child's main: the correlating half of the runtime until told to stop, or until the parent
    is gone."""
    from .app import build_runtime
    from .serving import drain_before_exit

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # NOTE: Ctrl-C reaches the whole process group, and systemd's SIGTERM every process of the unit;
    # the parent decides when this one stops (its "stop" message, or its pipe closing when it dies).
    # Stopping on the signal here as well hung the stop about one time in six.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # NOTE: on a busy machine the kernel serves the accepting process first, as priority.py had the
    # drain step aside inside one process; correlation still has any core left idle.
    os.nice(NICE)
    # NOTE: started daemonic (see _spawn), and multiprocessing refuses children to a daemonic process
    # lest they be orphaned when it is killed; this one's child, the build process, stops when its
    # pipe from here closes (runtime/build_ahead.py), so it is never left behind.
    multiprocessing.current_process().daemon = False
    stop = threading.Event()
    within = [settings.drain_seconds]
    lock = os.open(settings.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_SH)
    counters.woken_by(woken)
    rt = build_runtime(settings, role="correlate", counters=counters)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    rt.start_ticker()
    counters.started = True
    if isinstance(rt.clock, StreamClock):
        threading.Thread(
            target=_publish_clock, args=(rt.clock, clock_state, stop), name="eventmgmt-clock", daemon=True
        ).start()
    threading.Thread(target=_listen, args=(conn, rt, stop, within), name="eventmgmt-parent", daemon=True).start()
    log_json(log, "INFO", "correlating process started", pid=os.getpid(), backlog=rt.queue.backlog)
    stop.wait()
    drain_before_exit(rt, time.monotonic() + within[0])
    rt.stop()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def _listen(conn: Any, rt: Runtime, stop: threading.Event, within: list[float]) -> None:
    while True:
        try:
            kind, body = conn.recv()
        except (EOFError, OSError):
            log_json(log, "WARNING", "the accepting process is gone: stopping after the delivery in hand")
            within[0] = min(within[0], ORPHAN_STOP_SECONDS)
            stop.set()
            return
        if kind == "stop":
            within[0] = float(body)
            stop.set()
            return
        if kind == "correlated" and rt.operator_changes is not None:
            rt.operator_changes.handle(body)


def _publish_clock(clock: StreamClock, state: Any, stop: threading.Event) -> None:
    while True:
        mark, seen = clock.mark()
        if mark is not None:
            state[1] = seen
            state[0] = mark.timestamp()
        if stop.wait(CLOCK_EVERY):
            return
