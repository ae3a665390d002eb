"""Issue 15: a new episode within 24 hours of an earlier one's resolution names it (`recurrence_of`)
and counts the episodes of the last 24 hours (`recurrences`), on both repositories, although the
earlier incident retired `recurrence_window` (2 h) after it resolved; and the replay report carries
both fields."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from eventmgmt.archive import age_out_state, retention_config
from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.incident import IncidentAction
from eventmgmt.model import Event
from eventmgmt.replay import incident_entry
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.tables import IncidentRow, PastIncidentRow
from eventmgmt.transport import RecordingPublisher
from tests.support.pg import pg_schema

from .helpers import at, ev

POD = "triton-resnet50-7d9f8c6b5d-x2k4p"
OTHER_POD = "triton-resnet50-7d9f8c6b5d-q8m3z"
HOUR = 60


@contextmanager
def stage_on(backend: str, tmp_path) -> Iterator[CorrelateStage]:
    cfg = default_config()
    if backend == "memory":
        yield CorrelateStage(cfg, RecordingPublisher(), lambda: at(0), repo=MemoryRepo())
    elif backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
        ensure_schema(engine)
        yield CorrelateStage(cfg, RecordingPublisher(), lambda: at(0), engine=engine)
    else:
        with pg_schema() as url:
            engine = make_engine(url)
            ensure_schema(engine)
            try:
                yield CorrelateStage(cfg, RecordingPublisher(), lambda: at(0), engine=engine)
            finally:
                engine.dispose()


BACKENDS = ["memory", "sqlite", "postgresql"]  # PostgreSQL skips where no server runs (tests/support/pg.py)


def opened(stage: CorrelateStage, events: list[Event]) -> list[tuple[str, str | None, int]]:
    """(id, recurrence_of, recurrences) of each incident the events open, in order."""
    out = []
    for e in events:
        for m in stage.process(e):
            if m.action is IncidentAction.opened and m.incident is not None:
                out.append((m.incident.id, m.incident.recurrence_of, m.incident.recurrences))
    return out


def oom_episode(start: float, name: str, pod: str = POD, fp: str = "oom", kind: str = "pod_oom") -> list[Event]:
    """An OOM alert firing at `start` (minutes) and resolved 3 minutes later."""
    return [
        ev(kind, start, pod=pod, fp=fp, name=name),
        ev(kind, start + 3, pod=pod, fp=fp, name=name, status="resolved"),
    ]


def idle_until(stage: CorrelateStage, minute: float) -> None:
    """The stream goes on until `minute` without these alerts: the lifecycle ticks (the embedded
    runtime's ticker, or other traffic), resolving what went quiet, then retiring what settled."""
    for _ in range(2):
        stage.tick(at(minute))


def is_live(stage: CorrelateStage, incident_id: str) -> bool:
    if stage.memory is not None:
        return stage.memory.get(incident_id) is not None
    with Session(stage.engine) as s:
        return bool(s.get(IncidentRow, incident_id).live)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_oom_again_three_hours_later_names_the_retired_incident(backend, tmp_path):
    with stage_on(backend, tmp_path) as stage:
        ((first, _, _),) = opened(stage, oom_episode(0, "a"))
        idle_until(stage, 3 * HOUR - 1)
        # the first incident retired (2 h after it resolved) before the second episode: nothing live
        # is kept longer for this
        assert not is_live(stage, first)
        ((second, of, n),) = opened(stage, oom_episode(3 * HOUR, "b"))
        assert second != first
        assert (of, n) == (first, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_episodes_hours_apart_count_those_of_the_last_24_hours(backend, tmp_path):
    with stage_on(backend, tmp_path) as stage:
        got = []
        for i, start in enumerate((0, 3 * HOUR, 6 * HOUR, 9 * HOUR, 26 * HOUR)):
            idle_until(stage, start - 1)
            got += opened(stage, oom_episode(start, f"e{i}"))
        ids = [g[0] for g in got]
        assert [(of, n) for _, of, n in got] == [
            (None, 0),
            (ids[0], 1),
            (ids[1], 2),
            (ids[2], 3),
            # 26 h: the episode at 0 h is more than 24 h ago; 3 h, 6 h and 9 h count
            (ids[3], 3),
        ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_is_named_more_than_24_hours_after_the_resolution(backend, tmp_path):
    with stage_on(backend, tmp_path) as stage:
        opened(stage, oom_episode(0, "a"))  # resolves at 13 min (3 min + quiet period)
        idle_until(stage, 13 + 24 * HOUR)
        ((_, of, n),) = opened(stage, oom_episode(13 + 24 * HOUR + 1, "b"))
        assert (of, n) == (None, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_pod_by_another_alert_hours_later_is_named_another_pod_of_the_model_is_not(backend, tmp_path):
    with stage_on(backend, tmp_path) as stage:
        ((first, _, _),) = opened(stage, oom_episode(0, "a"))
        idle_until(stage, 4 * HOUR - 1)
        ((crash, of, n),) = opened(stage, oom_episode(4 * HOUR, "b", fp="crash", kind="triton_crash"))
        assert (of, n) == (first, 1)
        # another pod of the same model, hours later, is another problem, as within the 2 h
        idle_until(stage, 8 * HOUR - 1)
        ((_, of, n),) = opened(stage, oom_episode(8 * HOUR, "c", pod=OTHER_POD, fp="other"))
        assert (of, n) == (None, 0)
        assert crash != first


def test_flapping_within_the_quiet_period_stays_one_incident_and_names_nothing():
    corr = Correlator(default_config(), MemoryRepo())
    quiet = default_config().correlation.quiet_period.total_seconds() / 60
    first = corr.process(ev("pod_oom", 0, pod=POD, fp="oom", name="a"), at(0)).messages[-1]
    corr.process(ev("pod_oom", 3, pod=POD, fp="oom", name="a", status="resolved"), at(3))
    again = corr.process(ev("pod_oom", 3 + quiet - 1, pod=POD, fp="oom", name="b"), at(3 + quiet - 1)).messages
    assert [(m.incident_id, m.action) for m in again if m.action] == [(first.incident_id, IncidentAction.updated)]


def test_sql_forgets_digests_a_day_after_resolution_and_retention_ages_them_out(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    ensure_schema(engine)
    stage = CorrelateStage(default_config(), RecordingPublisher(), lambda: at(0), engine=engine)

    def digests() -> set[str]:
        with Session(engine) as s:
            return set(s.scalars(select(PastIncidentRow.incident_id).distinct()))

    ((first, _, _),) = opened(stage, oom_episode(0, "a"))
    idle_until(stage, 3 * HOUR)  # resolves it (at 13 min), then retires it (2 h later)
    assert digests() == {first}
    ((second, _, _),) = opened(stage, oom_episode(40 * HOUR, "b", pod=OTHER_POD, fp="other"))
    idle_until(stage, 43 * HOUR)
    # the first resolved more than a day (and the margin) before the second: its digest went
    assert first not in digests() and second in digests()
    policy = retention_config(default_config().section("retention"))
    now = at(0) + timedelta(days=400)
    dry = age_out_state(engine, policy, now, dry_run=True)
    assert dry["past_incidents"] > 0
    assert age_out_state(engine, policy, now) == dry
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(PastIncidentRow)) == 0


def test_replay_report_entry_carries_recurrence_of_and_recurrences():
    cfg = default_config()
    corr = Correlator(cfg, MemoryRepo())
    first = corr.process(ev("pod_oom", 0, pod=POD, fp="oom", name="a"), at(0)).messages[-1].incident_id
    corr.process(ev("pod_oom", 3, pod=POD, fp="oom", name="a", status="resolved"), at(3))
    for _ in range(2):
        corr.tick(at(3 * HOUR - 1))
    again = corr.process(ev("pod_oom", 3 * HOUR, pod=POD, fp="oom", name="b"), at(3 * HOUR)).messages[-1]
    inc = corr.repo.get(again.incident_id)
    entry = incident_entry(inc, cfg)
    assert entry["recurrence_of"] == first and entry["recurrences"] == 1
    assert incident_entry(corr.repo.get(again.incident_id), cfg)["recurrences"] == again.incident.recurrences


@pytest.mark.parametrize("backend", BACKENDS)
def test_retired_and_recurring_within_one_delivery(backend, tmp_path):
    """The delivery's first event retires the earlier incident; its second, the recurrence, names it
    (the SQL repository answers from what the transaction retired, before writing it)."""
    with stage_on(backend, tmp_path) as stage:
        ((first, _, _),) = opened(stage, oom_episode(0, "a"))
        stage.tick(at(30))  # resolved at 13 min; retires at 2 h 13 min
        other = ev("high_error_rate", 3 * HOUR, pod=OTHER_POD, fp="err", name="x")
        again = ev("pod_oom", 3 * HOUR + 1, pod=POD, fp="oom", name="b")
        messages = stage.process_many([other, again])
        snaps = [m.incident for m in messages if m.action is IncidentAction.opened and m.incident is not None]
        assert [(s.recurrence_of, s.recurrences) for s in snaps if s.id != first] == [(None, 0), (first, 1)]
        assert not is_live(stage, first)
