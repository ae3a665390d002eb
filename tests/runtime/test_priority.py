"""Correlation steps aside while ingest takes a delivery, but never for longer than its bound."""

from __future__ import annotations

import threading
import time

from eventmgmt.runtime.priority import IngestPriority


def test_step_aside_waits_for_the_request_in_flight() -> None:
    gate = IngestPriority(max_pause=5.0)
    gate.enter()
    released = threading.Event()

    def finish_later() -> None:
        time.sleep(0.2)
        released.set()
        gate.leave()

    threading.Thread(target=finish_later).start()
    gate.step_aside()
    assert released.is_set() and gate.busy == 0


def test_step_aside_is_bounded_under_sustained_load() -> None:
    gate = IngestPriority(max_pause=0.05)
    gate.enter()  # NOTE: never left: ingest is busy for good
    started = time.monotonic()
    gate.step_aside()
    assert time.monotonic() - started < 2.0 and gate.busy == 1


def test_idle_ingest_costs_no_wait() -> None:
    gate = IngestPriority(max_pause=5.0)
    gate.step_aside()
    assert gate.paused_seconds == 0.0


def test_wrap_counts_only_ingest_posts_and_survives_errors() -> None:
    gate = IngestPriority()
    seen: list[int] = []

    def app(environ: dict, start_response: object) -> list[bytes]:
        seen.append(gate.busy)
        if environ["PATH_INFO"] == "/ingest/boom":
            raise RuntimeError("handler failed")
        return [b"ok"]

    wrapped = gate.wrap(app)
    wrapped({"REQUEST_METHOD": "POST", "PATH_INFO": "/ingest/alertmanager"}, None)
    wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/ingest/stats"}, None)
    wrapped({"REQUEST_METHOD": "POST", "PATH_INFO": "/api/maintenance"}, None)
    try:
        wrapped({"REQUEST_METHOD": "POST", "PATH_INFO": "/ingest/boom"}, None)
    except RuntimeError:
        pass
    assert seen == [1, 0, 0, 1] and gate.busy == 0
