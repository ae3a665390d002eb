"""Clocks. Logic never reads the time itself; it is handed one of these."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# NOTE: how far an event's own timestamp, or the stream clock, may run ahead of the server's clock.
# Sender clocks are NTP-synced within seconds; a minute keeps honest skew and stops a forged date
# (2027, 9999) from resolving every open incident or overflowing date arithmetic.
MAX_SKEW = timedelta(seconds=60)
# NOTE: event timestamps before this are not real (Go's zero time, a negative epoch): receipt time
# stands in for them.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sane(t: datetime | None, received: datetime, skew: timedelta = MAX_SKEW) -> tuple[datetime, bool]:
    """`t` if it is a believable event time for something received at `received`; otherwise
    `received`, and True to say it was clamped (far future, before 1970, or missing)."""
    if t is None:
        return received, False
    if t < EPOCH or t > received + skew:
        return received, True
    return t, False


class EventClock:
    """Event time alone: the latest event time observed (replay, and tests). `observe` returns it."""

    def __init__(self) -> None:
        self._watermark: datetime | None = None

    def observe(self, t: datetime) -> datetime:
        if self._watermark is None or t > self._watermark:
            self._watermark = t
        return self._watermark

    @property
    def watermark(self) -> datetime | None:
        return self._watermark

    def __call__(self) -> datetime:
        assert self._watermark is not None, "event time starts with the first event"
        return self._watermark


class StreamClock:
    """Time as the event stream tells it: the latest event time seen, advancing at wall-clock speed
    since it was seen. For live traffic that follows the wall clock; for captures posted with their
    original times (a backfill or a demo), incidents resolve on the captures' own timeline, as they
    did that day, instead of all at once because the wall clock is days ahead.

    It never runs ahead of the wall clock by more than `skew`, and never backwards: no sender can
    move it into the future, whatever it claims.

    `observe` returns the watermark: the latest event time seen, without the wall-clock drift.
    Correlating an event uses that, so which incident an event joins depends on the events alone,
    never on when they happened to arrive (the served path equals replay). Only the ticker, which
    resolves incidents while nothing arrives, uses the drifting time."""

    def __init__(self, wall: Callable[[], datetime] = utcnow, skew: timedelta = MAX_SKEW) -> None:
        self._wall = wall
        self._skew = skew
        self._mark: datetime | None = None
        self._mark_mono = 0.0
        self._watermark: datetime | None = None
        self._lock = threading.Lock()

    def observe(self, t: datetime) -> datetime:
        with self._lock:
            t = min(t, self._wall() + self._skew)
            if self._watermark is None or t > self._watermark:
                self._watermark = t
            if self._mark is None or t > self.now_locked():
                self._mark = t
                self._mark_mono = time.monotonic()
            return self._watermark

    @property
    def watermark(self) -> datetime | None:
        with self._lock:
            return self._watermark

    def mark(self) -> tuple[datetime | None, float]:
        """The latest event time seen and when it was seen (time.monotonic()): what another process
        needs to tell the same time (runtime/correlation_process.py)."""
        with self._lock:
            return self._mark, self._mark_mono

    def now_locked(self) -> datetime:
        wall = self._wall()
        if self._mark is None:
            return wall
        return min(self._mark + timedelta(seconds=time.monotonic() - self._mark_mono), wall + self._skew)

    def __call__(self) -> datetime:
        with self._lock:
            return self.now_locked()
