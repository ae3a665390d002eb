"""Conditions read from the Kubernetes API: OOM-killed and crash-looping containers, pods not ready,
nodes NotReady or unschedulable. The API client is passed in (kubernetes.client.CoreV1Api)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..naming import workload_of_owner

# The label a pod's observations carry its workload in (the alert label `resources_of` reads).
WORKLOAD_LABEL = "deployment"


@dataclass(frozen=True)
class Observation:
    """A condition true now. `point` observations (an OOM kill at a time) are facts, not states."""

    signal: str
    labels: dict[str, str]
    summary: str
    point: bool = False
    at: datetime | None = None


def _ready(conditions: list[Any] | None) -> bool | None:
    for c in conditions or []:
        if c.type == "Ready":
            return c.status == "True"
    return None


def _workload(pod: Any) -> str | None:
    """The workload the pod's controlling owner names, whatever the pod is called (an operator's or a
    person's name gives none); None without one (its name may still give one: `resources_of`)."""
    for ref in getattr(pod.metadata, "owner_references", None) or []:
        if ref.controller:
            return workload_of_owner(ref.kind, ref.name)
    return None


def observe_pods(core_v1: Any, namespaces: list[str]) -> list[Observation]:
    pods = []
    if namespaces:
        for ns in namespaces:
            pods += core_v1.list_namespaced_pod(ns).items
    else:
        pods = core_v1.list_pod_for_all_namespaces().items
    out: list[Observation] = []
    for p in pods:
        ns, name, node = p.metadata.namespace, p.metadata.name, p.spec.node_name if p.spec else None
        base = {"namespace": ns, "pod": name, **({"node": node} if node else {})}
        workload = _workload(p)
        if workload:
            base[WORKLOAD_LABEL] = workload
        status = p.status
        for cs in (status.container_statuses or []) if status else []:
            labels = {**base, "container": cs.name}
            last = cs.last_state.terminated if cs.last_state else None
            if last is not None and last.reason == "OOMKilled":
                out.append(
                    Observation(
                        "ContainerOOMKilled",
                        labels,
                        f"container {cs.name} of {ns}/{name} was OOMKilled",
                        point=True,
                        at=last.finished_at,
                    )
                )
            waiting = cs.state.waiting if cs.state else None
            if waiting is not None and waiting.reason == "CrashLoopBackOff":
                out.append(
                    Observation("CrashLoopBackOff", labels, f"container {cs.name} of {ns}/{name} is crash looping")
                )
        if status and status.phase == "Running" and _ready(status.conditions) is False:
            out.append(Observation("KubePodNotReady", base, f"pod {ns}/{name} is not ready"))
    return out


def observe_nodes(core_v1: Any) -> list[Observation]:
    out: list[Observation] = []
    for n in core_v1.list_node().items:
        name = n.metadata.name
        if _ready(n.status.conditions if n.status else None) is not True:
            out.append(Observation("KubeNodeNotReady", {"node": name}, f"node {name} is not ready"))
        if n.spec is not None and n.spec.unschedulable:
            out.append(Observation("NodeUnschedulable", {"node": name}, f"node {name} is cordoned"))
    return out
