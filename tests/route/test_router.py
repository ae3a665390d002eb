"""Route against a real HTTP server on loopback answering as PagerDuty and Slack do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.enrich import TopologyGraph, enrich
from eventmgmt.incident import CorrelatedMessage, IncidentAction
from eventmgmt.route.config import RoutingConfig
from eventmgmt.route.retry import Retrier
from eventmgmt.route.router import Router, default_routing, ignored_sink_variables, ledger
from eventmgmt.store import ensure_schema, make_engine
from tests.correlate.helpers import at, ev
from tests.support.httpsink import Sink, http_sink
from tests.support.pg import pg_schema

POD = "triton-bert-large-r9w2fh26mf-6n65v"


@pytest.fixture
def sink() -> Iterator[Sink]:
    with http_sink() as s:
        yield s


def environ(sink: Sink) -> dict[str, str]:
    return {
        "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "R0UTINGKEY",
        "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
        "EVENTMGMT_SLACK_WEBHOOK_URL": sink.url + "/slack",
        "EVENTMGMT_CHANGE_WEBHOOK_URL": sink.url + "/changes",
    }


def make_router(sink: Sink, url: str, sleeps: list[float] | None = None) -> Router:
    engine = make_engine(url)
    ensure_schema(engine)
    env = environ(sink)
    retrier = Retrier(max_attempts=3, sleep=(sleeps.append if sleeps is not None else (lambda s: None)))
    return Router(
        default_routing(env),
        engine,
        httpx.Client(timeout=5),
        lambda: datetime(2026, 11, 7, tzinfo=UTC),
        "http://dash.example",
        retrier,
        env,
    )


@pytest.fixture
def router(sink: Sink, tmp_path) -> Router:
    return make_router(sink, f"sqlite:///{tmp_path / 'r.db'}")


def story() -> list[list[CorrelatedMessage]]:
    """A load failure, its error rate (an update), then quiet resolution: the messages correlate emits."""
    cfg = default_config()
    corr, graph = Correlator(cfg, MemoryRepo()), TopologyGraph()

    def step(e):
        return corr.process(enrich(e, cfg, graph), e.received_at).messages

    out = [step(ev("model_load_failed", 0, pod=POD, model="bert-large", source="log"))]
    out.append(step(ev("high_error_rate", 1, pod=POD, model="bert-large", fp="e")))
    out.append(step(ev("high_error_rate", 3, pod=POD, model="bert-large", fp="e", status="resolved")))
    out.append(corr.tick(at(30)))
    return out


def test_pages_once_resolves_once_and_redelivery_never_repeats(router: Router, sink: Sink):
    opened, updated, resolving, resolved = story()
    assert opened[-1].action is IncidentAction.opened
    for _ in range(2):  # every message delivered twice
        for batch in (opened, updated, resolving, resolved):
            for m in batch:
                router.route(m)
    pd = sink.bodies("/v2/enqueue")
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"]
    trigger = pd[0]
    inc = opened[-1].incident
    assert trigger["routing_key"] == "R0UTINGKEY" and trigger["dedup_key"] == inc.id
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["class"] == "model_load_failed"
    assert trigger["payload"]["custom_details"]["action"].startswith("Run the incident runbook")
    assert {"href": f"http://dash.example/incidents/{inc.id}", "text": "Incident in eventmgmt"} in trigger["links"]
    assert pd[1] == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": inc.id}
    slack = sink.bodies("/slack")
    assert len(slack) == 2 and "TRIGGERED" in slack[0]["text"] and "Runbook" in slack[0]["text"]
    assert "model_load_failed" in slack[0]["text"] and "RESOLVED" in slack[1]["text"]
    assert sink.bodies("/changes") == []
    rows = {(r["receiver"], r["state"], r["sent"]) for r in ledger(router.engine)}
    assert rows == {("pagerduty", "resolved", 2), ("slack", "resolved", 2)}


def test_stale_snapshot_is_dropped(router: Router, sink: Sink):
    opened, updated, resolving, resolved = story()
    router.route(resolved[-1])  # the resolution arrives first: nothing was triggered, nothing sent
    router.route(opened[-1])  # an older version arriving late must not page
    assert sink.bodies("/v2/enqueue") == []


def test_429_is_retried_after_retry_after(sink: Sink, tmp_path):
    sleeps: list[float] = []
    router = make_router(sink, f"sqlite:///{tmp_path / 'r.db'}", sleeps)
    sink.answer(
        "/v2/enqueue",
        429,
        {"status": "throttle event", "message": "Requests for this service are arriving too quickly"},
        {"Retry-After": "2"},
    )
    router.route(story()[0][-1])
    assert [b["event_action"] for b in sink.bodies("/v2/enqueue")] == ["trigger", "trigger"]
    assert 2.0 in sleeps


def test_5xx_exhausts_then_waits_in_the_outbox_and_flush_sends_once(sink: Sink, router: Router):
    msg = story()[0][-1]
    sink.answer("/v2/enqueue", 500, {"status": "error"}, times=3)
    assert router.route(msg) == [("slack", "triggered")]  # Slack was up; PagerDuty waits
    assert len(sink.bodies("/v2/enqueue")) == 3
    router.route(msg)  # a redelivery neither retries nor queues twice
    assert len(router.outbox()) == 1 and len(sink.bodies("/v2/enqueue")) == 3
    now = router.clock()
    assert router.flush(now) == {"delivered": 0, "pending": 0, "not_sent": 0}  # not due yet
    assert router.flush(now + timedelta(minutes=1)) == {"delivered": 1, "pending": 0, "not_sent": 0}
    router.route(msg)
    assert len(sink.bodies("/v2/enqueue")) == 4
    assert len(sink.bodies("/slack")) == 1


def test_400_is_not_retried_and_is_reported(sink: Sink, router: Router):
    msg = story()[0][-1]
    sink.answer(
        "/v2/enqueue",
        400,
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect"],
        },
    )
    router.route(msg)  # no exception: retrying cannot fix a 400
    router.route(msg)
    assert len(sink.bodies("/v2/enqueue")) == 1
    row = next(r for r in ledger(router.engine) if r["receiver"] == "pagerduty")
    assert "400" in row["last_error"] and "invalid" in row["last_error"]


def test_slack_404_no_service(sink: Sink, router: Router):
    sink.answer("/slack", 404, "no_service")
    router.route(story()[0][-1])
    row = next(r for r in ledger(router.engine) if r["receiver"] == "slack")
    assert "no_service" in row["last_error"]


def test_change_records_go_to_change_management_only(sink: Sink, router: Router):
    corr = Correlator(default_config(), MemoryRepo())
    msgs = corr.process(ev("node_drain", 0, node="gpu-node-a", name="cordon"), at(0)).messages
    router.route(msgs[-1])
    router.route(msgs[-1])
    assert sink.bodies("/v2/enqueue") == [] and sink.bodies("/slack") == []
    (change,) = sink.bodies("/changes")
    assert change["state"] == "linked" and change["incident"]["kind"] == "change"
    info = corr.process(ev("pod_lifecycle", 1, pod=POD, name="sched"), at(1)).messages
    assert router.route(info[-1]) == []


def test_routes_match_on_severity_and_namespace(sink: Sink, tmp_path):
    routing = RoutingConfig.model_validate(
        {
            "receivers": [
                {"name": "pd", "type": "pagerduty"},
                {"name": "team", "type": "webhook", "url_env": "TEAM_URL"},
            ],
            "routes": [
                {"receiver": "pd", "min_severity": "critical", "continue": True},
                {"receiver": "team", "match": {"namespace": "inference"}},
            ],
        }
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    ensure_schema(engine)
    env = {**environ(sink), "TEAM_URL": sink.url + "/team"}
    router = Router(
        routing, engine, httpx.Client(), lambda: datetime(2026, 11, 7, tzinfo=UTC), "http://d", Retrier(), env
    )
    cfg = default_config()
    corr, graph = Correlator(cfg, MemoryRepo()), TopologyGraph()
    medium = corr.process(enrich(ev("gpu_high_util", 0, pod=POD, node="n"), cfg, graph), at(0)).messages[-1]
    assert medium.incident.severity.value == "medium"
    assert router.route(medium) == [("team", "triggered")]  # below critical: the team, not PagerDuty
    critical = enrich(ev("model_load_failed", 0, pod="triton-x-68kxfnbbb2-wbq4j", source="log"), cfg, graph)
    assert [r for r, _ in router.route(corr.process(critical, at(0)).messages[-1])] == ["pd", "team"]


def test_unknown_receiver_in_route_is_a_config_error():
    with pytest.raises(ValueError, match="unknown receiver"):
        RoutingConfig.model_validate({"receivers": [], "routes": [{"receiver": "nobody"}]})


def test_ledger_on_postgresql(sink: Sink):
    with pg_schema() as url:
        router = make_router(sink, url)
        opened, updated, resolving, resolved = story()
        for batch in (opened, opened, updated, resolved, resolved):
            for m in batch:
                router.route(m)
        assert [b["event_action"] for b in sink.bodies("/v2/enqueue")] == ["trigger", "resolve"]
        router.engine.dispose()


def test_outbox_on_postgresql_owes_the_trigger_of_an_incident_that_came_and_went(sink: Sink):
    """PagerDuty down from the first page to after the resolution: once back, it is told both, in
    order, exactly once, however often the outbox is flushed."""
    with pg_schema() as url:
        router = make_router(sink, url)
        opened, updated, resolving, resolved = story()
        sink.down = True
        for batch in (opened, updated, resolving, resolved):
            for m in batch:
                router.route(m)
        (pending,) = (r for r in router.outbox() if r["receiver"] == "pagerduty")
        assert (pending["state"], pending["owed"]) == ("resolved", "triggered")
        later = router.clock() + timedelta(minutes=10)
        assert router.flush(later)["pending"] >= 1  # still down: kept, tried again later
        sink.down = False
        much_later = later + timedelta(hours=1)
        assert router.flush(much_later)["delivered"] >= 1
        assert router.flush(much_later + timedelta(hours=1)) == {"delivered": 0, "pending": 0, "not_sent": 0}
        assert router.outbox() == []
        assert [b["event_action"] for b in sink.taken_bodies("/v2/enqueue")] == ["trigger", "resolve"]
        router.engine.dispose()


@pytest.mark.parametrize("row_exists", [False, True], ids=["no-ledger-row", "ledger-row-exists"])
def test_instances_racing_on_one_opening_page_it_once_on_postgresql(sink: Sink, row_exists: bool):
    """One opening handled at once by several route instances (each its own engine), whether its
    ledger rows are yet to be created or exist untold: each receiver is told once."""
    import threading

    from sqlalchemy.orm import Session

    from eventmgmt.route.ledger import LedgerRow

    with pg_schema() as url:
        routers = [make_router(sink, url) for _ in range(4)]
        opened, *_ = story()
        if row_exists:
            with Session(routers[0].engine) as s, s.begin():
                for name in ("pagerduty", "slack", "change"):
                    s.add(LedgerRow(receiver=name, incident_id=opened[-1].incident_id, state="none", version=0, sent=0))
        start = threading.Barrier(len(routers) * 2)
        errors: list[BaseException] = []

        def run(r: Router) -> None:
            try:
                start.wait(10)
                for m in opened:
                    r.route(m)
            except BaseException as err:  # reported by the assertion below
                errors.append(err)

        threads = [threading.Thread(target=run, args=(r,)) for r in routers for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert [b["event_action"] for b in sink.taken_bodies("/v2/enqueue")] == ["trigger"]
        assert len(sink.taken_bodies("/slack")) == 1
        for r in routers:
            r.engine.dispose()


def test_receivers_set_in_the_environment_but_left_out_of_a_routing_section_are_named():
    routing = RoutingConfig.model_validate(
        {
            "receivers": [
                {"name": "team", "type": "webhook", "url_env": "TEAM_URL"},
                {"name": "chat", "type": "slack"},  # NOTE: the type's own variable, not named
            ],
            "routes": [{"receiver": "team"}],
        }
    )
    env = {
        "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
        "EVENTMGMT_SLACK_WEBHOOK_URL": "http://slack",
        "EVENTMGMT_WEBHOOK_URL": "http://hook",
        "TEAM_URL": "http://team",
    }
    assert ignored_sink_variables(routing, env) == ["EVENTMGMT_PAGERDUTY_ROUTING_KEY", "EVENTMGMT_WEBHOOK_URL"]
    assert ignored_sink_variables(default_routing(env), env) == []


def test_the_router_warns_at_start_about_receivers_it_will_not_page(tmp_path, monkeypatch, caplog):
    from eventmgmt.config import load_config
    from eventmgmt.settings import Settings

    monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
    monkeypatch.setenv("TEAM_URL", "http://team")
    path = tmp_path / "eventmgmt.yaml"
    path.write_text(
        "routing:\n  receivers: [{name: team, type: webhook, url_env: TEAM_URL}]\n  routes: [{receiver: team}]\n"
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    ensure_schema(engine)
    with caplog.at_level("WARNING", logger="eventmgmt.route"):
        router = Router.from_settings(Settings(home=tmp_path), load_config(path), engine, lambda: at(0))
    router.close()
    warned = [r.getMessage() for r in caplog.records if "not paged" in r.getMessage()]
    assert warned and "EVENTMGMT_PAGERDUTY_ROUTING_KEY" in warned[0]
