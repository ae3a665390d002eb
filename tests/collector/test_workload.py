"""A pod's workload read from the Kubernetes API (its controlling ownerReference), whatever the pod is
called: the collector's observations carry it, and enrichment then fills it in on the alerts about
those pods, so a storm of pods an operator or a person named is grouped by workload as one of
Deployment pods is."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace as NS
from typing import Any

import pytest

from eventmgmt.classify import admit
from eventmgmt.collector import CollectorConfig, run_once
from eventmgmt.collector.state import CollectorState
from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.enrich import TopologyGraph, enrich
from eventmgmt.naming import workload_of_owner
from eventmgmt.sources import ParseContext, parse_delivery
from tests.correlate.helpers import at

KUBE = CollectorConfig(rules=[], kubernetes=True)


def pod(name: str, node: str, owner: tuple[str, str] | None) -> Any:
    refs = [NS(kind=owner[0], name=owner[1], controller=True)] if owner else None
    cs = NS(name="server", last_state=NS(terminated=None), state=NS(waiting=NS(reason="CrashLoopBackOff")))
    return NS(
        metadata=NS(namespace="inference", name=name, owner_references=refs),
        spec=NS(node_name=node),
        status=NS(phase="Running", container_statuses=[cs], conditions=[NS(type="Ready", status="True")]),
    )


class FakeCore:
    def __init__(self, pods: list[Any]) -> None:
        self.pods = pods

    def list_pod_for_all_namespaces(self) -> Any:
        return NS(items=self.pods)

    def list_node(self) -> Any:
        return NS(items=[])


@pytest.mark.parametrize(
    ("kind", "name", "workload"),
    [
        ("ReplicaSet", "triton-bert-7f9c6d8b4", "triton-bert"),
        ("ReplicaSet", "bare", "bare"),
        ("StatefulSet", "vllm", "vllm"),
        ("DaemonSet", "gpu-agent", "gpu-agent"),
        ("Job", "nightly-eval-28312345", "nightly-eval"),
        ("Job", "embed", "embed"),
        ("InferenceService", "llama", "llama"),
        ("ReplicaSet", None, None),
    ],
)
def test_the_workload_of_an_owner(kind: str, name: str | None, workload: str | None) -> None:
    assert workload_of_owner(kind, name) == workload


def test_the_collectors_pod_observations_name_the_owners_workload() -> None:
    core = FakeCore([pod("triton-a0", "n1", ("StatefulSet", "triton")), pod("scratch", "n2", None)])
    events = {e.resources.pod: e for e in run_once(at(0), KUBE, CollectorState(), None, core).events}
    assert events["triton-a0"].resources.deployment == "triton"
    assert events["scratch"].resources.deployment is None


def test_reading_the_owner_moves_no_condition() -> None:
    """Conditions tracked before the owner was read keep their keys: nothing fires or resolves again."""
    state = CollectorState()
    named = [pod(f"agent-{i}", f"n{i}", None) for i in range(3)]
    assert len(run_once(at(0), KUBE, state, None, FakeCore(named)).events) == 3
    owned = [pod(f"agent-{i}", f"n{i}", ("DaemonSet", "gpu-agent")) for i in range(3)]
    assert run_once(at(1), KUBE, state, None, FakeCore(owned)).events == []


def _alerts(pods: list[str]) -> list[Any]:
    body = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "KubePodCrashLooping",
                    "namespace": "inference",
                    "pod": p,
                    "node": f"gpu-{i // 4}",
                    "container": "server",
                    "severity": "critical",
                    "job": "kube-state-metrics",
                },
                "startsAt": (at(0) + timedelta(seconds=i)).isoformat(),
            }
            for i, p in enumerate(pods)
        ],
    }
    parsed = parse_delivery("alertmanager", body, ParseContext("c1", at(2)))
    return admit(parsed.events, default_config())[0]


@pytest.mark.parametrize(("learned", "incidents"), [(True, 1), (False, 40)])
def test_a_storm_of_pods_a_person_named_is_one_incident_once_the_cluster_was_read(
    learned: bool, incidents: int
) -> None:
    names = [f"triton-{c}{i}" for i, c in enumerate("aeiou" * 8)]  # no controller's suffix
    config, graph = default_config(), TopologyGraph()
    if learned:
        core = FakeCore([pod(n, f"gpu-{i // 4}", ("StatefulSet", "triton-fleet")) for i, n in enumerate(names)])
        for ev in admit(run_once(at(0), KUBE, CollectorState(), None, core).events, config)[0]:
            enrich(ev, config, graph)
    corr = Correlator(config, MemoryRepo())
    opened = set()
    for ev in _alerts(names):
        for m in corr.process(enrich(ev, config, graph), at(2)).messages:
            if m.incident_id:
                opened.add(m.incident_id)
    live = {i for i in opened if corr.merged_into(i) is None}
    assert len(live) == incidents
