"""A process of its own builds queued deliveries' events ahead of the drain, on the second core.

Building a queued webhook's events (parse, classify, filter: ingest/queued.py `build_part`) was a
fifth of the correlating process's work in a storm, done in the drain's thread between its
correlation transactions. Here a builder process reads the queue's rows itself, builds them and
sends their events back as JSON (about a third of the cost of building them), while the drain
correlates the rows before. Correlation stays in the drain, in order: only the pure part moves.

Who builds a row is decided by one number both processes map: the highest sequence number claimed.
Each claims the next row in order by raising it (under an flock, which the kernel releases if its
holder dies); the drain builds the rows of its batch it claims and waits for the builder's. So when
the drain is alone (at rest, or with the builder down) it builds as before, with no hand-over; in a
storm the two share the work and the builder runs ahead, by at most `lookahead` events beyond what
the drain has handled.

Failure handling: a row the builder could not build comes back empty and the drain builds it, so
its error reaches the drain's own handling (retries, the dead-letter table). A builder that dies
leaves its rows to the drain; one that keeps the drain waiting `wait` seconds is killed and does
the same. Either is started again after RESTART_DELAY (longer while it keeps dying). The builder
stops when the drain's process closes its pipe, dies included."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..config import Config
from ..ingest.queued import DELIVERIES, BuiltPart, build_part
from ..logjson import log_json
from ..sources.limits import Limits
from ..transport.publisher import Outgoing
from .builder import Claims, Wire, from_wire, run_builder
from .durable_queue import Delivery

log = logging.getLogger("eventmgmt")

LOOKAHEAD_EVENTS = 3000
WAIT_SECONDS = 10.0
# NOTE: a builder that dies is started again after this, doubling while it keeps dying within a
# minute of its start, up to MAX_RESTART_DELAY.
RESTART_DELAY = 5.0
MAX_RESTART_DELAY = 60.0


class BuildAhead:
    """The drain's side: starts the builder, takes its results, and gives the drain its batch with
    every queued part built (`prepare`), by the builder or here."""

    def __init__(
        self,
        queue_path: Path,
        config: Config,
        limits: Limits,
        *,
        lookahead: int = LOOKAHEAD_EVENTS,
        wait: float = WAIT_SECONDS,
        ctx: Any = None,
        report: Callable[..., None] | None = None,
    ) -> None:
        self.queue_path = queue_path
        self.config = config
        self.limits = limits
        self.lookahead = lookahead
        self.wait = wait
        # NOTE: told of each row built and each restart (SharedCounters.built: /metrics of `serve`)
        self.report = report or (lambda **_: None)
        self._ctx = ctx or multiprocessing.get_context("spawn")
        self._lock_path = queue_path.with_name(queue_path.name + ".build-lock")
        self._state = self._ctx.RawArray("q", 2)
        self.claims = Claims(self._state, self._lock_path)
        self._results: dict[int, list[Wire] | None] = {}
        self._mine: set[int] = set()
        # NOTE: rows a builder that died had claimed (and whose results never came) are the drain's
        self._orphaned = 0
        self._changed = threading.Condition()
        self._proc: Any = None
        self._control: Any = None
        self._alive = False
        self._died_at: float | None = None
        self._started_at = 0.0
        self._delay = RESTART_DELAY
        self._closed = False
        self._ready = threading.Event()
        # NOTE: read by tests and benchmarks: rows built ahead, rows built in the drain, rows the
        # builder had claimed and was too slow with, restarts
        self.ahead_rows = 0
        self.drain_rows = 0
        self.late_rows = 0
        self.restarts = 0

    # --- the builder's life -----------------------------------------------------------------------
    def start(self) -> BuildAhead:
        results, send = self._ctx.Pipe(duplex=False)
        receive, control = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=run_builder,
            args=(self.queue_path, self._state, self._lock_path, self.config, self.limits, self.lookahead),
            kwargs={"control": receive, "results": send},
            name="eventmgmt-build",
            daemon=True,
        )
        proc.start()
        send.close()
        receive.close()
        # NOTE: a wake-up never blocks the drain, even with the builder stopped and its pipe full: a
        # message this small is written whole or not at all (EAGAIN), and one in the pipe is enough.
        os.set_blocking(control.fileno(), False)
        self._ready.clear()
        self._started_at = time.monotonic()
        with self._changed:
            self._proc, self._control, self._alive = proc, control, True
        threading.Thread(target=self._receive, args=(results,), name="eventmgmt-build-results", daemon=True).start()
        return self

    def _receive(self, conn: Any) -> None:
        while True:
            try:
                seq, wire = conn.recv()
            except (EOFError, OSError):
                break
            if seq == 0:
                self._ready.set()  # NOTE: its hello: imported and connected
                continue
            with self._changed:
                if seq > self.claims.handled:
                    self._results[seq] = wire
                self._changed.notify_all()
        conn.close()
        with self._changed:
            self._orphaned = self.claims.claimed
            self._alive = False
            self._changed.notify_all()
        if not self._closed:
            self._died_at = time.monotonic()
            quick = self._died_at - self._started_at < 60
            self._delay = min(MAX_RESTART_DELAY, self._delay * 2) if quick and self.restarts else RESTART_DELAY
            log_json(
                log,
                "ERROR",
                "the build process exited; the drain builds alone until it is started again",
                exitcode=self._proc.exitcode if self._proc is not None else None,
                retry_in=self._delay,
            )

    def wait_ready(self, timeout: float) -> bool:
        """Whether the builder has started (imported what it needs), within `timeout` seconds."""
        return self._ready.wait(timeout)

    def _restart_if_due(self) -> None:
        if self._alive or self._closed or self._died_at is None:
            return
        if time.monotonic() - self._died_at >= self._delay:
            self._died_at = None
            self.restarts += 1
            self.report(restarts=1)
            self.start()

    def close(self) -> None:
        """Stop the builder (the drain is stopped first); a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._control is not None:
            try:
                self._control.send("stop")
            except (OSError, ValueError):
                pass
            self._control.close()
        if self._proc is not None:
            self._proc.join(2.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2.0)
        self.claims.close()
        log_json(
            log,
            "INFO",
            "build process stopped",
            rows_built_ahead=self.ahead_rows,
            rows_built_in_drain=self.drain_rows,
            restarts=self.restarts,
        )

    # --- the drain's side -------------------------------------------------------------------------
    def prepare(self, batch: list[Delivery]) -> list[Delivery]:
        """`batch` with each queued part built: the rows the builder claimed as it built them, the
        others here. A part that fails to build stays as queued, so the drain meets its error."""
        self._restart_if_due()
        self._wake()
        out = list(batch)
        theirs = []
        for i, d in enumerate(batch):
            if d.topic != DELIVERIES:
                continue
            if d.seq in self._results:
                theirs.append(i)
            elif d.seq in self._mine or d.seq <= self._orphaned or self.claims.claim(d.seq) or not self._alive:
                self._mine.add(d.seq)
                out[i] = _with_parts(d, self._build_here(d))
            else:
                theirs.append(i)
        # NOTE: one deadline for the batch: a stalled builder costs the drain `wait` once
        deadline = time.monotonic() + self.wait
        for i in theirs:
            out[i] = _with_parts(batch[i], self._take(batch[i], deadline))
        return out

    @property
    def counts(self) -> tuple[int, int, int]:
        """Rows built ahead, rows built in the drain, restarts."""
        return self.ahead_rows, self.drain_rows, self.restarts

    def _build_here(self, d: Delivery) -> list[BuiltPart] | None:
        self.drain_rows += 1
        self.report(in_drain=1)
        try:
            return [build_part(m.payload, self.limits, self.config) for m in d.messages]
        except Exception:
            return None  # NOTE: handed on as queued: the drain's handling meets the error

    def _take(self, d: Delivery, deadline: float) -> list[BuiltPart] | None:
        """The builder's parts for row `d`, waited for until `deadline`; built here if it is gone or
        too slow (then it is killed, and started again like one that died)."""
        with self._changed:
            while d.seq not in self._results and self._alive:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            found, wire = d.seq in self._results, self._results.get(d.seq)
        if not found:
            if self._alive:
                self.late_rows += 1
                log_json(log, "ERROR", "the build process is stalled: killed; the drain builds its rows", row=d.seq)
                self._proc.kill()
                with self._changed:
                    self._alive = False  # NOTE: the rest of its rows are built here, without waiting
            self._mine.add(d.seq)
            return self._build_here(d)
        if wire is None or len(wire) != len(d.messages):
            return self._build_here(d)
        self.ahead_rows += 1
        self.report(ahead=1)
        return [from_wire(m.payload, w) for m, w in zip(d.messages, wire, strict=True)]

    def forget(self, through: int) -> None:
        """Rows up to `through` are handled (removed or dead-lettered): the builder may run further."""
        self.claims.handled_through(through)
        with self._changed:
            for seq in [s for s in self._results if s <= through]:
                del self._results[seq]
        self._mine = {s for s in self._mine if s > through}
        self._wake()

    def _wake(self) -> None:
        try:
            if self._alive and self._control is not None:
                self._control.send("work")
        except (OSError, ValueError):
            pass


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 quota (a Kubernetes CPU
    limit of 1 leaves one core's time however many the node has)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass  # NOTE: no cgroup v2 quota to read: the affinity stands
    return cores


def _with_parts(d: Delivery, parts: list[BuiltPart] | None) -> Delivery:
    if parts is None:
        return d
    # NOTE: the built part in place of the queued payload; drain.hand_on unwraps it where a stage
    # wants the message as queued.
    messages = [
        Outgoing(cast(dict[str, Any], p), m.attributes, m.ordering_key) for p, m in zip(parts, d.messages, strict=True)
    ]
    return Delivery(d.seq, d.delivery, d.topic, messages, d.events)
