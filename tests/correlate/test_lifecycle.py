"""Incident lifecycle: resolve after a quiet period, reopen, retire, duplicates, maintenance."""

from __future__ import annotations

from datetime import timedelta

from eventmgmt.config import parse_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.enrich import TopologyGraph, enrich
from eventmgmt.incident import IncidentAction, IncidentStatus

from .helpers import at, ev

POD = "triton-bert-large-r9w2fh26mf-6n65v"


def actions(msgs):
    return [(m.incident_id, m.action) for m in msgs if m.action is not None]


def make(**corr):
    retired = []
    cfg = parse_config({"correlation": corr} if corr else {})
    return Correlator(cfg, MemoryRepo(on_retire=retired.append)), retired, cfg


def test_resolves_after_quiet_period_then_retires():
    corr, retired, cfg = make()
    f = ev("high_error_rate", 0, pod=POD, fp="e")
    r = ev("high_error_rate", 5, pod=POD, fp="e", status="resolved")
    iid = actions(corr.process(f, at(0)).messages)[0][0]
    corr.process(r, at(5))
    assert corr.repo.get(iid).status is IncidentStatus.open  # quiet period not over yet
    assert corr.tick(at(5) + cfg.correlation.quiet_period - timedelta(seconds=1)) == []
    done = corr.tick(at(5) + cfg.correlation.quiet_period)
    assert actions(done) == [(iid, IncidentAction.resolved)]
    assert done[0].incident.status is IncidentStatus.resolved
    corr.tick(at(5) + cfg.correlation.quiet_period + cfg.correlation.recurrence_window - timedelta(seconds=1))
    assert retired == []
    corr.tick(at(5) + cfg.correlation.quiet_period + cfg.correlation.recurrence_window)
    assert [i.id for i in retired] == [iid]


def test_firing_incident_never_resolves():
    corr, _, _ = make()
    iid = actions(corr.process(ev("high_error_rate", 0, pod=POD, fp="e"), at(0)).messages)[0][0]
    assert corr.tick(at(120)) == []
    assert corr.repo.get(iid).status is IncidentStatus.open


def test_a_new_episode_after_resolution_is_a_recurrence_naming_the_earlier_incident():
    corr, _, cfg = make()
    iid = actions(corr.process(ev("high_error_rate", 0, pod=POD, fp="e"), at(0)).messages)[0][0]
    corr.process(ev("high_error_rate", 2, pod=POD, fp="e", status="resolved"), at(2))
    corr.tick(at(30))
    assert corr.repo.get(iid).is_resolved and corr.repo.get(iid).resolved_at == at(2) + cfg.correlation.quiet_period
    again = corr.process(ev("high_error_rate", 35, pod=POD, fp="e", name="again"), at(35))
    ((new_id, action),) = actions(again.messages)
    assert action is IncidentAction.opened and new_id != iid
    assert again.messages[-1].incident.recurrence_of == iid and again.messages[-1].incident.recurrences == 1
    # a third episode counts both earlier ones
    corr.process(ev("high_error_rate", 36, pod=POD, fp="e", name="again", status="resolved"), at(36))
    corr.tick(at(60))
    third = corr.process(ev("high_error_rate", 70, pod=POD, fp="e", name="third"), at(70))
    snap = third.messages[-1].incident
    assert snap.recurrence_of == new_id and snap.recurrences == 2


def test_an_oom_of_the_same_pod_after_resolution_is_a_new_incident_even_by_another_alert():
    corr, _, _ = make()
    first = actions(corr.process(ev("pod_oom", 0, pod=POD, fp="oom1"), at(0)).messages)[0][0]
    corr.process(ev("pod_oom", 3, pod=POD, fp="oom1", status="resolved"), at(3))
    corr.tick(at(20))
    msgs = corr.process(ev("triton_crash", 45, pod=POD, fp="crash2"), at(45)).messages
    ((second, action),) = actions(msgs)
    assert action is IncidentAction.opened and second != first
    assert msgs[-1].incident.recurrence_of == first


def test_flapping_within_the_quiet_period_stays_one_incident():
    corr, _, cfg = make()
    iid = actions(corr.process(ev("high_error_rate", 0, pod=POD, fp="e"), at(0)).messages)[0][0]
    corr.process(ev("high_error_rate", 2, pod=POD, fp="e", status="resolved"), at(2))
    quiet = cfg.correlation.quiet_period.total_seconds() / 60
    corr.tick(at(2 + quiet - 1))
    again = corr.process(ev("high_error_rate", 2 + quiet - 1, pod=POD, fp="e", name="again"), at(2 + quiet - 1))
    assert actions(again.messages) == [(iid, IncidentAction.updated)]


def test_an_event_from_before_the_resolution_finds_the_incident_open_however_late_it_arrives():
    """Whether the ticker resolved the incident before a late event arrived (served, on the wall
    clock) or not (replay): the event joins, so membership depends on event times alone."""
    corr, _, _ = make()
    iid = actions(corr.process(ev("high_error_rate", 0, pod=POD, fp="e"), at(0)).messages)[0][0]
    corr.process(ev("high_error_rate", 2, pod=POD, fp="e", status="resolved"), at(2))
    corr.tick(at(40))  # resolved at 12
    late = corr.process(ev("model_unavailable", 11, pod=POD, fp="u"), at(40))
    assert actions(late.messages) == [(iid, IncidentAction.reopened)]


def test_after_reopen_window_a_new_incident_opens():
    corr, retired, _ = make()
    iid = actions(corr.process(ev("high_error_rate", 0, pod=POD, fp="e"), at(0)).messages)[0][0]
    corr.process(ev("high_error_rate", 2, pod=POD, fp="e", status="resolved"), at(2))
    corr.tick(at(13))
    later = corr.process(ev("high_error_rate", 200, pod=POD, fp="e", name="later"), at(200))
    ((new_id, action),) = actions(later.messages)
    assert action is IncidentAction.opened and new_id != iid
    assert [i.id for i in retired] == [iid]


def test_duplicate_delivery_changes_nothing():
    corr, _, _ = make()
    e = ev("high_error_rate", 0, pod=POD, fp="e")
    first = corr.process(e, at(0))
    inc = corr.repo.get(first.messages[-1].incident_id)
    version = inc.version
    again = corr.process(e, at(1))
    assert again.duplicate
    assert again.messages[0].action is None and again.messages[0].incident_id == inc.id
    assert inc.version == version and len(inc.members) == 1


def test_change_record_turns_into_incident_when_alerts_join():
    corr, _, _ = make()
    msgs = corr.process(ev("deployment_change", 0, deployment="triton-bert-large"), at(0)).messages
    assert msgs[-1].incident.kind == "change" and msgs[-1].action is IncidentAction.opened
    msgs = corr.process(ev("model_load_failed", 1, pod=POD, model="bert-large", source="log"), at(1)).messages
    assert msgs[-1].incident.kind == "incident" and msgs[-1].action is IncidentAction.opened
    assert msgs[-1].incident.root_kind == "deployment_change"


def test_maintenance_suppresses_and_evaluates_what_still_fires_at_the_end():
    cfg = parse_config(
        {
            "maintenance": [
                {
                    "name": "upgrade",
                    "start": at(0).isoformat(),
                    "end": at(30).isoformat(),
                    "when": {"resources": {"pod": "triton-bert.*"}},
                }
            ]
        }
    )
    corr = Correlator(cfg, MemoryRepo())
    graph = TopologyGraph()
    resolved_inside = [
        ev("high_error_rate", 1, pod=POD, fp="a"),
        ev("high_error_rate", 5, pod=POD, fp="a", status="resolved"),
    ]
    still_firing = ev("pod_not_ready", 10, pod=POD, fp="b")
    other_pod = ev("high_error_rate", 10, pod="triton-resnet50-68kxfnbbb2-wbq4j", fp="c")
    opened = []
    for e in [*resolved_inside, still_firing, other_pod]:
        e = enrich(e, cfg, graph)
        assert e.suppressed == (e.resources.pod == POD)
        opened += actions(corr.process(e, e.received_at).messages)
    assert len(opened) == 1  # only the pod outside the window pages
    end = corr.tick(at(30))
    ((iid, action),) = actions(end)
    assert action is IncidentAction.opened
    inc = corr.repo.get(iid)
    assert [m.kind for m in inc.members] == ["pod_not_ready"]


def test_recurring_window_matches_next_occurrence():
    from eventmgmt.config import MaintenanceWindow
    from eventmgmt.enrich.maintenance import window_bounds

    w = MaintenanceWindow(name="weekly", start=at(0), end=at(60), every=timedelta(days=7))
    assert window_bounds(w, at(7 * 24 * 60 + 30)) == (at(7 * 24 * 60), at(7 * 24 * 60 + 60))
    assert window_bounds(w, at(7 * 24 * 60 + 61)) is None
