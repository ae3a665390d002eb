"""While an incident's first page waits for `group_wait`, its later versions (a storm announces every
incident again in each correlation transaction) are passed over without a look at the ledger or the
outbox; the page, when due, carries the incident as it stands then, exactly once, and a receiver
already told of the incident still hears of its updates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.incident import CorrelatedMessage
from eventmgmt.route.router import Router, default_routing
from eventmgmt.route.stored import StoredIncidents
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.transport import RecordingPublisher
from tests.correlate.helpers import at, ev
from tests.route.test_router import environ
from tests.support.httpsink import Sink, http_sink

POD = "triton-bert-large-r9w2fh26mf-6n65v"


def versions(stage: CorrelateStage, n: int) -> list[CorrelatedMessage]:
    """`n` announcements of one incident, a version each (one alert per further pod)."""
    out = []
    for i in range(n):
        pod = POD if i == 0 else f"triton-bert-large-r9w2fh26mf-{i:05d}"
        out += [m for m in stage.process(ev("high_error_rate", i, pod=pod, model="bert-large")) if m.incident]
    return out


@contextmanager
def counted(router: Router) -> Iterator[list[str]]:
    """Counts the ledger's reads (a row held) and outbox queries (receivers down)."""
    calls: list[str] = []
    hold, down = router.ledger.hold, router.ledger.down
    router.ledger.hold = lambda *a: (calls.append("hold"), hold(*a))[1]  # type: ignore[method-assign]
    router.ledger.down = lambda: (calls.append("down"), down())[1]  # type: ignore[method-assign]
    yield calls


def setup(sink: Sink, tmp_path, wait: float) -> tuple[CorrelateStage, Router]:
    state = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    ensure_schema(state)
    stage = CorrelateStage(default_config(), RecordingPublisher(), lambda: at(0), engine=state)
    env = environ(sink)
    clock = lambda: datetime(2026, 11, 7, tzinfo=UTC)  # noqa: E731
    router = Router(
        default_routing(env),
        state,
        httpx.Client(timeout=5),
        clock,
        "http://d",
        None,
        env,
        StoredIncidents(state),
        group_wait=timedelta(seconds=wait),
    )
    return stage, router


def triggers(sink: Sink) -> list[str]:
    return [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]


def test_later_versions_of_a_held_incident_cost_no_ledger_read_and_page_once_when_due(tmp_path) -> None:
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=1.0)
        first, *later = versions(stage, 6)
        with counted(router) as calls:
            router.route(first)  # read once: told nothing, so the page waits
            looked = len(calls)
            for m in later:
                router.route(m)
            assert len(calls) == looked, calls
        assert triggers(sink) == []
        time.sleep(1.1)
        assert router.release_waiting() == 1
        pages = sink.bodies("/v2/enqueue")
        assert len(pages) == 1 and pages[0]["dedup_key"] == first.incident_id
        assert pages[0]["payload"]["custom_details"]["members"] == 6  # as the incident stands when due
        router.route(later[-1])  # the last announcement again, after the page: nothing more
        assert len(sink.bodies("/v2/enqueue")) == 1


def test_after_the_page_is_due_updates_go_through_the_ledger_again(tmp_path) -> None:
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=0.5)
        first, second, third = versions(stage, 3)
        router.route(first)
        time.sleep(0.6)
        with counted(router) as calls:
            router.route(second)  # due now: the page goes out (the ledger read and written)
            assert "hold" in calls
        assert [p["dedup_key"] for p in sink.bodies("/v2/enqueue")] == [first.incident_id]
        with counted(router) as calls:
            router.route(third)
            assert "hold" in calls  # told already: each update is decided by the ledger
