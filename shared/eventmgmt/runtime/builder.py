"""The build process of runtime/build_ahead.py: claims queued rows in order, builds their events
(ingest/queued.py `build_part`) and sends them to the drain as JSON. It imports only what building
needs (not the state store or SQLAlchemy), so it stays small: about 40 MB resident at rest."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .. import jsontext
from ..config import Config
from ..ingest.queued import DELIVERIES, BuiltPart, build_part
from ..model import Event
from ..sources import Rejection
from ..sources.limits import Limits
from .memory import TRIM_AFTER_EVENTS, trim

# NOTE: after it built something the builder looks for new rows this often, for ACTIVE_SECONDS:
# in a storm rows keep arriving while the drain correlates; at rest it sleeps until the drain wakes it.
ACTIVE_POLL = 0.005
ACTIVE_SECONDS = 1.0
IDLE_POLL = 1.0
ROWS_PER_READ = 8

_EVENTS = TypeAdapter(list[Event])
# NOTE: a built part as it crosses the pipe: source, capture, receipt time, events as JSON, what
# each filter dropped, and the late refusals (index, field, error, status).
Wire = tuple[str, str, str, bytes, dict[str, int], list[tuple[int, str, str, int]]]


def to_wire(built: BuiltPart) -> Wire:
    late = [(r.index, r.field, r.error, r.status) for r in built.late]
    received = built.received_at.isoformat()
    return (
        built.source,
        built.capture,
        received,
        _EVENTS.dump_json(built.kept, by_alias=True),
        dict(built.dropped),
        late,
    )


def from_wire(payload: Any, wire: Wire) -> BuiltPart:
    source, capture, received, events, dropped, late = wire
    return BuiltPart(
        payload,
        source,
        capture,
        datetime.fromisoformat(received),
        _EVENTS.validate_json(events),
        Counter(dropped),
        [Rejection(*r) for r in late],
    )


class Claims:
    """[highest sequence number claimed, highest handled by the drain], in memory both processes
    map; claims are serialised by an flock on `lock_path` (one open file per process)."""

    def __init__(self, state: Any, lock_path: Path) -> None:
        self.state = state
        self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def claim(self, seq: int) -> bool:
        """True if `seq` was not claimed yet (it is now, with every row before it)."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if seq <= self.state[0]:
                return False
            self.state[0] = seq
            return True
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @property
    def claimed(self) -> int:
        return int(self.state[0])

    @property
    def handled(self) -> int:
        return int(self.state[1])

    def handled_through(self, seq: int) -> None:
        self.state[1] = max(int(self.state[1]), seq)  # NOTE: one writer, the drain

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def run_builder(
    queue_path: Path,
    state: Any,
    lock_path: Path,
    config: Config,
    limits: Limits,
    lookahead: int,
    *,
    control: Any,
    results: Any,
) -> None:
    """The builder's main: claims and builds rows until its pipe from the drain closes."""
    # NOTE: the drain's process decides when this one stops (see correlation_process.run)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # NOTE: the lowest priority: it takes a core only when nothing else wants it. Starved, it costs
    # the drain little: it claims a row only as it starts building it, and the drain, waiting for
    # that one row, leaves it the core. Storm rounds, same run: correlated median 3,288 alerts/s at
    # the drain's own niceness, 3,369 at the lowest.
    os.nice(19 - os.nice(0))
    builder = _Builder(queue_path, Claims(state, lock_path), config, limits, lookahead, results)
    active_until = 0.0
    try:
        results.send((0, None))
        while True:
            timeout = ACTIVE_POLL if time.monotonic() < active_until else IDLE_POLL
            if control.poll(timeout) and not _woken(control):
                return
            while builder.build_some():
                active_until = time.monotonic() + ACTIVE_SECONDS
            # NOTE: a burst's parsed bodies leave freed heap behind, as in the drain (drain.py): given
            # back when the burst is over, and every TRIM_AFTER_EVENTS within a long one.
            idle = time.monotonic() >= active_until
            if builder.built_since_trim >= TRIM_AFTER_EVENTS or (idle and builder.built_since_trim):
                trim()
                builder.built_since_trim = 0
    except (BrokenPipeError, EOFError, OSError):
        return  # NOTE: the drain's process is gone


def _woken(control: Any) -> bool:
    """Reads what the drain sent; False when it said stop or its end closed."""
    while control.poll():
        try:
            if control.recv() == "stop":
                return False
        except EOFError:
            return False
    return True


class _Builder:
    def __init__(
        self, queue_path: Path, claims: Claims, config: Config, limits: Limits, lookahead: int, results: Any
    ) -> None:
        self.db = sqlite3.connect(queue_path, check_same_thread=False)
        self.db.execute("PRAGMA query_only = 1")
        self.claims = claims
        self.build: Callable[[Any], BuiltPart] = lambda payload: build_part(payload, limits, config)
        self.lookahead = lookahead
        self.results = results
        self._mine: deque[tuple[int, int]] = deque()  # (seq, events) claimed here, not yet handled
        self._ahead = 0
        self.built_since_trim = 0

    def build_some(self) -> bool:
        """Claims and builds the next rows, within the lookahead; False when there was none."""
        handled = self.claims.handled
        while self._mine and self._mine[0][0] <= handled:
            self._ahead -= self._mine.popleft()[1]
        if self._ahead >= self.lookahead:
            return False
        after = max(self.claims.claimed, handled)
        rows = self.db.execute(
            "SELECT seq, topic, events, body FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, ROWS_PER_READ),
        ).fetchall()
        built = False
        for seq, topic, events, body in rows:
            if self._ahead >= self.lookahead:
                break
            if not self.claims.claim(seq) or topic != DELIVERIES:
                continue
            self._mine.append((seq, events))
            self._ahead += events
            self.built_since_trim += events
            self.results.send((seq, self._wire(body)))
            built = True
        return built or bool(rows)

    def _wire(self, body: str) -> list[Wire] | None:
        try:
            return [to_wire(self.build(payload)) for payload, _, _ in jsontext.loads(body)]
        except Exception:
            return None  # NOTE: the drain builds it again and meets the error itself
