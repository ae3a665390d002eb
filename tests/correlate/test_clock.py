from __future__ import annotations

from datetime import timedelta

from eventmgmt.clock import StreamClock, utcnow

from .helpers import at


def test_stream_clock_follows_the_stream_not_the_wall():
    c = StreamClock()
    assert abs((c() - utcnow()).total_seconds()) < 5  # nothing seen: wall clock
    c.observe(at(0))
    assert at(0) <= c() < at(0) + timedelta(seconds=5)  # a backfill days in the past
    c.observe(at(-10))  # an older receipt never moves time back
    assert c() >= at(0)
    c.observe(at(30))
    assert c() >= at(30)
