"""Guarantees a review with planted bugs found untested (issue 13): an alert left firing resolves
once stale, and not a moment before; a join-only kind (a container stopped by the kubelet) opens
nothing by itself but joins what is open."""

from __future__ import annotations

from datetime import timedelta

from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.incident import IncidentAction

from .helpers import T0, at, ev


def test_an_alert_left_firing_resolves_when_stale_and_not_before() -> None:
    config = default_config()
    stale = config.correlation.stale_after
    corr = Correlator(config, MemoryRepo())
    opened = corr.process(ev("model_unavailable", 0, model="bert", fp="mu-bert"), at(0)).messages[-1]
    assert opened.action is IncidentAction.opened
    # NOTE: nothing arrives; the quiet period alone must not resolve a firing alert
    assert corr.tick(T0 + config.correlation.quiet_period * 3) == []
    assert corr.tick(T0 + stale - timedelta(seconds=1)) == []
    resolved = corr.tick(T0 + stale + timedelta(seconds=1))
    assert [m.action for m in resolved] == [IncidentAction.resolved]
    assert resolved[0].incident_id == opened.incident_id
    assert resolved[0].incident is not None and resolved[0].incident.resolved_at == T0 + stale


def test_a_join_only_kind_opens_nothing_but_joins_what_is_open() -> None:
    config = default_config()
    assert "pod_stop" in config.correlation.join_only
    corr = Correlator(config, MemoryRepo())
    alone = corr.process(ev("pod_stop", 0, pod="triton-a-7c9f8d6b5-x2k4q", node="n1"), at(0)).messages[-1]
    assert alone.incident_id is None and list(corr.repo.live()) == []  # type: ignore[attr-defined]
    # NOTE: a drain's eviction opens a change record; the kubelet stopping the evicted pod joins it
    evict = corr.process(ev("pod_eviction", 1, pod="triton-b-7c9f8d6b5-x2k4q", node="n2"), at(1)).messages[-1]
    stop = corr.process(ev("pod_stop", 1.2, pod="triton-b-7c9f8d6b5-x2k4q", node="n2"), at(1.2)).messages[-1]
    assert evict.incident_id is not None and stop.incident_id == evict.incident_id
