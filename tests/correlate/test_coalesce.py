"""A delivery announces each incident once, as it stands at the end of the delivery."""

from __future__ import annotations

from eventmgmt.config import default_config
from eventmgmt.correlate.coalesce import coalesce
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.incident import IncidentAction

from .helpers import at, ev


def pod(i: int) -> str:
    return f"triton-bert-{i:04d}"  # NOTE: not a Deployment pod name: no deployment to group by


def test_pods_opened_and_folded_into_their_models_incident_within_a_delivery_are_never_announced():
    corr = Correlator(default_config(), MemoryRepo())
    messages = []
    for i in range(5):
        messages += corr.process(ev("triton_crash", 0, pod=pod(i), node=f"n{i}", fp=f"c{i}"), at(0)).messages
        messages += corr.process(
            ev("high_error_rate", 0, pod=pod(i), node=f"n{i}", model="bert", fp=f"e{i}"), at(0)
        ).messages
    raw_opened = {m.incident_id for m in messages if m.action is IncidentAction.opened}
    assert len(raw_opened) == 5  # without coalescing every pod's fragment was announced (and paged)
    out = coalesce(messages)
    assert len(messages) > 10  # the events folding a fragment away had two messages, the merge's and their own
    # every event keeps one message (archive), and one only (route and archive took each merging event twice)
    assert sorted(m.event.id for m in out) == sorted({m.event.id for m in messages}) and len(out) == 10
    announced = [(m.incident_id, m.action) for m in out if m.incident is not None]
    ((survivor, action),) = announced
    assert action is IncidentAction.opened
    assert {m.incident_id for m in out} == {survivor}  # members point at the incident they ended in
    assert out[-1].incident is not None and out[-1].incident.member_count == 10


def test_an_incident_announced_earlier_keeps_its_strongest_action_once():
    corr = Correlator(default_config(), MemoryRepo())
    first = coalesce(corr.process(ev("high_error_rate", 0, pod=pod(1), fp="a"), at(0)).messages)
    assert [m.action for m in first] == [IncidentAction.opened]
    batch = []
    for i in range(3):
        batch += corr.process(ev("high_error_rate", 1, pod=pod(1), fp=f"b{i}"), at(1)).messages
    out = coalesce(batch)
    assert [m.action for m in out] == [None, None, IncidentAction.updated]
    assert out[-1].incident is not None and out[-1].incident.version == 4
