"""The collector's state machine with fakes: `for` durations, events only on change, failures."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace as NS

from eventmgmt.classify import classify
from eventmgmt.collector import CollectorConfig, Rule, run_once
from eventmgmt.collector.state import CollectorState, StateFile
from eventmgmt.config import default_config
from tests.correlate.helpers import at


class FakeProm:
    def __init__(self) -> None:
        self.series: dict[str, list[dict]] = {}
        self.down = False

    def custom_query(self, query: str) -> list[dict]:
        if self.down:
            raise ConnectionError("Connection refused")
        return self.series.get(query, [])


RULE = Rule(name="TritonHighErrorRate", expr="errors > 0.01", severity="critical", **{"for": timedelta(minutes=5)})
CFG = CollectorConfig(rules=[RULE], kubernetes=False)
SERIES = [
    {
        "metric": {
            "model": "resnet50",
            "version": "1",
            "pod": "triton-resnet50-68kxfnbbb2-wbq4j",
            "namespace": "inference",
        },
        "value": [0, "0.5"],
    }
]


def test_fires_after_for_duration_once_and_resolves_once():
    prom, state = FakeProm(), CollectorState()
    prom.series["errors > 0.01"] = SERIES
    assert run_once(at(0), CFG, state, prom, None).events == []  # pending
    assert run_once(at(4), CFG, state, prom, None).events == []
    (firing,) = run_once(at(5), CFG, state, prom, None).events
    assert run_once(at(6), CFG, state, prom, None).events == []  # still firing: nothing new
    prom.series["errors > 0.01"] = []
    (resolved,) = run_once(at(7), CFG, state, prom, None).events
    assert run_once(at(8), CFG, state, prom, None).events == []
    assert firing.fingerprint == resolved.fingerprint and firing.started_at == resolved.started_at == at(0)
    assert (firing.status.value, resolved.status.value) == ("firing", "resolved")
    ev = classify(firing, default_config())
    assert (ev.kind, ev.cls.value, ev.resources.model, ev.resources.pod) == (
        "high_error_rate",
        "alert",
        "resnet50",
        "triton-resnet50-68kxfnbbb2-wbq4j",
    )


def test_a_blip_shorter_than_for_never_fires():
    prom, state = FakeProm(), CollectorState()
    prom.series["errors > 0.01"] = SERIES
    run_once(at(0), CFG, state, prom, None)
    prom.series["errors > 0.01"] = []
    assert run_once(at(2), CFG, state, prom, None).events == []
    assert state.conditions == {}


def test_unreachable_prometheus_is_one_error_event_and_resolves_nothing():
    prom, state = FakeProm(), CollectorState()
    prom.series["errors > 0.01"] = SERIES
    run_once(at(0), CFG, state, prom, None)
    run_once(at(5), CFG, state, prom, None)  # firing
    prom.down = True
    r1 = run_once(at(6), CFG, state, prom, None)
    r2 = run_once(at(7), CFG, state, prom, None)
    assert [e.signal for e in r1.events] == ["CollectorError"] and r2.events == []
    assert "Connection refused" in r1.errors["prometheus"]
    err = classify(r1.events[0], default_config())
    assert (err.kind, err.cls.value, err.severity.value) == ("collector_error", "alert", "low")
    prom.down = False
    back = run_once(at(8), CFG, state, prom, None).events
    assert [(e.signal, e.status.value) for e in back] == [("CollectorError", "resolved")]  # the error rate still fires


def test_ids_are_stable_so_a_rerun_after_a_failed_publish_does_not_duplicate(tmp_path):
    prom = FakeProm()
    prom.series["errors > 0.01"] = SERIES
    file = StateFile(str(tmp_path / "s.json"))
    state = file.load()
    run_once(at(0), CFG, state, prom, None)
    file.save(state)
    first = run_once(at(5), CFG, file.load(), prom, None).events  # publish failed: state not saved
    again = run_once(at(5), CFG, file.load(), prom, None).events
    assert [e.id for e in first] == [e.id for e in again]


def pod(name, *, oom_at=None, crash=False, ready=True, node="gpu-node-1"):
    terminated = NS(reason="OOMKilled", finished_at=oom_at) if oom_at else None
    cs = NS(
        name="triton",
        last_state=NS(terminated=terminated),
        state=NS(waiting=NS(reason="CrashLoopBackOff") if crash else None),
    )
    return NS(
        metadata=NS(namespace="inference", name=name),
        spec=NS(node_name=node),
        status=NS(phase="Running", container_statuses=[cs], conditions=[NS(type="Ready", status=str(ready))]),
    )


class FakeCore:
    def __init__(self, pods, nodes):
        self.pods, self.nodes = pods, nodes

    def list_pod_for_all_namespaces(self):
        return NS(items=self.pods)

    def list_node(self):
        return NS(items=self.nodes)


def node(name, ready=True, unschedulable=False):
    return NS(
        metadata=NS(name=name),
        spec=NS(unschedulable=unschedulable),
        status=NS(conditions=[NS(type="Ready", status="True" if ready else "False")]),
    )


def test_kubernetes_conditions():
    cfg = CollectorConfig(rules=[], kubernetes=True)
    state = CollectorState()
    core = FakeCore(
        [pod("triton-a-68kxfnbbb2-wbq4j", oom_at=at(-1), crash=True, ready=False)],
        [node("gpu-node-1", ready=False, unschedulable=True)],
    )
    first = run_once(at(0), cfg, state, None, core).events
    got = {(e.signal, e.status.value) for e in first}
    assert got == {
        ("ContainerOOMKilled", "firing"),
        ("CrashLoopBackOff", "firing"),
        ("KubePodNotReady", "firing"),
        ("KubeNodeNotReady", "firing"),
        ("NodeUnschedulable", "firing"),
    }
    kinds = {classify(e, default_config()).kind for e in first}
    assert kinds == {"pod_oom", "triton_crash", "pod_not_ready", "node_not_ready", "node_drain"}
    assert run_once(at(1), cfg, state, None, core).events == []  # nothing changed, nothing emitted
    core.pods = [pod("triton-a-68kxfnbbb2-wbq4j", oom_at=at(-1))]
    core.nodes = [node("gpu-node-1")]
    healed = {(e.signal, e.status.value) for e in run_once(at(2), cfg, state, None, core).events}
    # the OOM kill is a fact, not a state: it never "resolves"
    assert healed == {
        ("CrashLoopBackOff", "resolved"),
        ("KubePodNotReady", "resolved"),
        ("KubeNodeNotReady", "resolved"),
        ("NodeUnschedulable", "resolved"),
    }
