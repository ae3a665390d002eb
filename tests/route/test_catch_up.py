"""Catching up from the state store: what correlate stored and no message brought to route (a crash
lost the queue, a message was dead-lettered) is sent from the stored incidents, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.route.router import Router, default_routing
from eventmgmt.route.stored import StoredIncidents
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.transport import RecordingPublisher
from tests.correlate.helpers import at, ev
from tests.route.test_router import environ
from tests.support.httpsink import Sink, http_sink
from tests.support.pg import pg_schema

POD = "triton-bert-large-r9w2fh26mf-6n65v"


@pytest.fixture
def sink() -> Iterator[Sink]:
    with http_sink() as s:
        yield s


def stores(url: str) -> tuple[CorrelateStage, Engine]:
    """A correlate stage writing incidents to `url` (what route does not hear of, it catches up on)."""
    engine = make_engine(url)
    ensure_schema(engine)
    return CorrelateStage(default_config(), RecordingPublisher(), lambda: at(0), engine=engine), engine


def router_for(sink: Sink, state_url: str, ledger_url: str) -> Router:
    ledger = make_engine(ledger_url)
    ensure_schema(ledger)
    env = environ(sink)
    clock = lambda: datetime(2026, 11, 7, tzinfo=UTC)  # noqa: E731
    incidents = StoredIncidents(make_engine(state_url))
    return Router(default_routing(env), ledger, httpx.Client(timeout=5), clock, "http://d", None, env, incidents)


def actions(sink: Sink) -> list[tuple[str, str]]:
    return [(b["event_action"], b["dedup_key"]) for b in sink.bodies("/v2/enqueue")]


def test_an_incident_route_never_heard_of_is_paged_once(sink: Sink, tmp_path):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    stage, _ = stores(state)
    (opened, *_) = (m for m in stage.process(ev("model_load_failed", 0, pod=POD, source="log")) if m.incident)
    router = router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}")
    assert router.catch_up() == {"checked": 1, "sent": 2}  # PagerDuty and Slack
    assert router.catch_up() == {"checked": 0, "sent": 0}  # settled: not even read again
    router.route(opened)  # the message arriving after all: already told
    assert actions(sink) == [("trigger", opened.incident_id)]
    fresh = router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}")  # a restart: reads all, sends none
    assert fresh.catch_up() == {"checked": 1, "sent": 0}
    assert len(sink.bodies("/slack")) == 1


def test_an_incident_that_came_and_went_unseen_is_still_triggered_then_resolved(sink: Sink, tmp_path):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    stage, _ = stores(state)
    stage.process(ev("model_load_failed", 0, pod=POD, source="log"))
    (resolved,) = (m for m in stage.tick(at(0) + timedelta(hours=2)) if m.incident)
    assert resolved.incident is not None and resolved.incident.status.value == "resolved"
    router = router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}")
    router.catch_up()
    assert actions(sink) == [("trigger", resolved.incident_id), ("resolve", resolved.incident_id)]
    router.route(resolved)
    assert router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}").catch_up()["sent"] == 0
    assert len(actions(sink)) == 2


def test_a_resolution_never_delivered_is_sent_after_the_incident_retired(sink: Sink, tmp_path):
    """Told the trigger; the resolution's message was lost; the incident has left the live set since."""
    state = f"sqlite:///{tmp_path / 'state.db'}"
    stage, _ = stores(state)
    (opened, *_) = (m for m in stage.process(ev("model_load_failed", 0, pod=POD, source="log")) if m.incident)
    router = router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}")
    router.route(opened)
    stage.tick(at(0) + timedelta(hours=2))  # resolves
    stage.tick(at(0) + timedelta(days=2))  # retires: no longer live
    assert StoredIncidents(make_engine(state)).versions() == {}
    router.catch_up()
    assert actions(sink) == [("trigger", opened.incident_id), ("resolve", opened.incident_id)]


def test_a_receiver_down_during_catch_up_is_owed_the_trigger_in_its_outbox(sink: Sink, tmp_path):
    state = f"sqlite:///{tmp_path / 'state.db'}"
    stage, _ = stores(state)
    stage.process(ev("model_load_failed", 0, pod=POD, source="log"))
    stage.tick(at(0) + timedelta(hours=2))
    router = router_for(sink, state, f"sqlite:///{tmp_path / 'route.db'}")
    sink.down = True
    router.retrier.sleep = lambda s: None
    router.catch_up()
    pending = {(r["receiver"], r["state"], r["owed"]) for r in router.outbox()}
    assert ("pagerduty", "resolved", "triggered") in pending
    sink.down = False
    router.flush(router.clock() + timedelta(hours=1))
    assert [b["event_action"] for b in sink.taken_bodies("/v2/enqueue")] == ["trigger", "resolve"]


def test_catch_up_on_postgresql(sink: Sink):
    """Ledger and incidents in one PostgreSQL database, as on Google Cloud."""
    with pg_schema() as url:
        stage, engine = stores(url)
        stage.process(ev("model_load_failed", 0, pod=POD, source="log"))
        stage.process(ev("model_load_failed", 0, pod="triton-gpt-68kxfnbbb2-wbq4b", node="n2", source="log"))
        router = router_for(sink, url, url)
        assert router.catch_up()["sent"] == 4
        assert router_for(sink, url, url).catch_up()["sent"] == 0
        assert len({k for _, k in actions(sink)}) == 2 and len(actions(sink)) == 2
        router.engine.dispose()
        engine.dispose()
