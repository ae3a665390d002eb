"""Clocks. Logic never reads the time itself; it is handed one of these."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


class StreamClock:
    """Time as the event stream tells it: the latest receipt time seen, advancing at wall-clock speed
    since it was seen. For live traffic that is the wall clock; for captures posted with their
    original receipt times (a backfill or a demo), incidents resolve on the captures' own timeline,
    as they did that day, instead of all at once because the wall clock is days ahead."""

    def __init__(self) -> None:
        self._mark: datetime | None = None
        self._mark_mono = 0.0
        self._lock = threading.Lock()

    def observe(self, t: datetime) -> None:
        with self._lock:
            if self._mark is None or t > self.now_locked():
                self._mark = t
                self._mark_mono = time.monotonic()

    def now_locked(self) -> datetime:
        if self._mark is None:
            return utcnow()
        return self._mark + timedelta(seconds=time.monotonic() - self._mark_mono)

    def __call__(self) -> datetime:
        with self._lock:
            return self.now_locked()
