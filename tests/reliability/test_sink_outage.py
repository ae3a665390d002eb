"""A sink down for ten minutes of simulated time: the public scenario's correlated stream routed twice
on the scenario's own clock, once with PagerDuty and Slack up throughout and once with both answering
503 for ten minutes in the middle of the busiest stretch. What the receivers end up told must be the same,
message for message, with nothing dropped and nothing sent twice; only later."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from eventmgmt.config import default_config
from eventmgmt.incident import CorrelatedMessage
from eventmgmt.replay import replay
from eventmgmt.route.router import Router
from eventmgmt.transport.messages import decode_correlated
from tests.route.test_router import make_router
from tests.support.httpsink import Sink, http_sink
from tests.support.incidents import SCENARIOS

OUTAGE = timedelta(minutes=10)
TICK = timedelta(seconds=30)  # how often the runtime's ticker flushes the outbox


def correlated_stream(name: str) -> list[tuple[datetime, CorrelatedMessage]]:
    out: list[tuple[datetime, CorrelatedMessage]] = []

    def listen(ce) -> None:  # type: ignore[no-untyped-def]
        msgs = decode_correlated(ce, "test")
        assert msgs
        out.extend((msg.event.received_at, msg) for msg in msgs)

    with open(SCENARIOS / name / "captures.jsonl") as f:
        replay(f, default_config(), None, listen)
    return out


def route_stream(
    stream: list[tuple[datetime, CorrelatedMessage]], router: Router, sink: Sink, outage: tuple[datetime, datetime]
) -> list[tuple[datetime, str, dict]]:
    """Routes the stream on its own clock, flushing every TICK; returns (simulated time, path, body)
    of each request a receiver took."""
    told: list[tuple[datetime, str, dict]] = []
    router.drained_at = None  # type: ignore[attr-defined]

    def at(t: datetime) -> None:
        sink.down = outage[0] <= t < outage[1]
        router.clock = lambda: t

    def note(t: datetime) -> None:
        told.extend((t, path, body) for path, body in sink.taken[len(told) :])

    tick = stream[0][0]
    for t, msg in stream:
        while tick <= t:
            at(tick)
            router.flush(tick)
            note(tick)
            if tick >= outage[1] and router.drained_at is None and not router.outbox():  # type: ignore[attr-defined]
                router.drained_at = tick  # type: ignore[attr-defined]
            tick += TICK
        at(t)
        router.route(msg)
        note(t)
    deadline = tick + timedelta(hours=2)
    while router.outbox() and tick < deadline:
        at(tick)
        router.flush(tick)
        note(tick)
        tick += TICK
    return told


def told_per_incident(told: list[tuple[datetime, str, dict]]) -> dict[str, list[str]]:
    """PagerDuty actions per incident, in order; Slack messages counted (a late one carries the newer
    snapshot, so its text may differ from the on-time one)."""
    out: dict[str, list[str]] = defaultdict(list)
    for _, path, body in told:
        if path == "/v2/enqueue":
            out[body["dedup_key"]].append(body["event_action"])
        elif path == "/slack":
            out["slack messages"].append("sent")
    return dict(out)


def test_sink_down_for_ten_simulated_minutes(tmp_path: Path) -> None:
    if not (SCENARIOS / "public-1" / "captures.jsonl").exists():
        pytest.skip("scenario captures not present")
    stream = correlated_stream("public-1")
    never = (stream[0][0], stream[0][0])
    with http_sink() as sink:
        calm = route_stream(stream, make_router(sink, f"sqlite:///{tmp_path / 'calm.db'}"), sink, never)
    # the outage covers the ten minutes in which the receivers were told the most
    times = sorted(t for t, _, _ in calm)
    start = max(times, key=lambda t: sum(1 for u in times if t <= u < t + OUTAGE))
    outage = (start, start + OUTAGE)

    with http_sink() as sink:
        router = make_router(sink, f"sqlite:///{tmp_path / 'outage.db'}")
        stormy = route_stream(stream, router, sink, outage)
        refused = len(sink.requests) - len(sink.taken)
        left = router.outbox()

    assert left == []
    assert refused > 0, "the outage never met a delivery"
    assert told_per_incident(stormy) == told_per_incident(calm)  # same messages, none lost, none twice
    in_outage = [t for t, _, _ in calm if outage[0] <= t < outage[1]]
    assert in_outage, "nothing was due during the outage"
    # the outbox retries with backoff capped at five minutes: empty again within one cap of the end
    assert router.drained_at is not None and router.drained_at <= outage[1] + timedelta(minutes=5) + TICK

    figures = {
        "outage_minutes": OUTAGE.total_seconds() / 60,
        "requests_refused": refused,
        "messages_due_in_outage": len(in_outage),
        "messages_told": len(stormy),
        "incidents_paged": len([k for k in told_per_incident(stormy) if k != "slack messages"]),
        "outbox_empty_after_outage_s": (router.drained_at - outage[1]).total_seconds(),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print("sink outage:", json.dumps(figures))
