"""The node <-> pod <-> deployment <-> model <-> GPU graph, learned from events and the Kubernetes API.

Only facts that name two resources at once are learned (a kubelet event's pod and host, a Fluent Bit
record's pod and node, an alert's pod and model): each pod keeps its latest node, deployment and model,
so a rescheduled pod follows its new node; a pod seen serving two models has no model filled in. Memory is bounded by an LRU on pods."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..model import Event, Resources


@dataclass(frozen=True)
class PodFacts:
    namespace: str
    node: str | None = None
    deployment: str | None = None
    model: str | None = None
    gpu: str | None = None
    seen_at: datetime | None = None
    # NOTE: a Triton pod serving several models names each in its own lines; its server-wide lines
    # (the exit, a memory warning) belong to none of them, so no model is filled in for it.
    several_models: bool = False


class TopologyGraph:
    def __init__(self, max_pods: int = 100_000) -> None:
        self.max_pods = max_pods
        self._pods: OrderedDict[tuple[str, str], PodFacts] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pods)

    def learn(self, res: Resources, when: datetime | None = None) -> None:
        if not res.pod:
            return
        key = (res.namespace or "", res.pod)
        with self._lock:
            old = self._pods.pop(key, None) or PodFacts(namespace=key[0])
            if old.seen_at and when and when < old.seen_at and old.node:
                # NOTE: an older fact arriving late must not move a pod back to its previous node.
                self._pods[key] = old
                return
            self._pods[key] = replace(
                old,
                node=res.node or old.node,
                deployment=res.deployment or old.deployment,
                model=res.model or old.model,
                several_models=old.several_models or bool(res.model and old.model and res.model != old.model),
                gpu=res.gpu or old.gpu,
                seen_at=when or old.seen_at,
            )
            while len(self._pods) > self.max_pods:
                self._pods.popitem(last=False)

    def pod(self, namespace: str | None, pod: str) -> PodFacts | None:
        with self._lock:
            return self._pods.get((namespace or "", pod))

    def fill(self, res: Resources) -> Resources:
        """`res` with what the graph knows about its pod filled in (never overriding the event)."""
        if not res.pod:
            return res
        facts = self.pod(res.namespace, res.pod)
        if facts is None:
            return res
        update: dict[str, Any] = {}
        for field in ("node", "deployment", "model"):
            if field == "model" and facts.several_models:
                continue
            if getattr(res, field) is None and getattr(facts, field) is not None:
                update[field] = getattr(facts, field)
        return res.model_copy(update=update) if update else res

    def learn_from_cluster(self, core_v1: Any, namespace: str | None = None) -> int:
        """Load pods from the Kubernetes API (a `kubernetes.client.CoreV1Api`): node, owner, labels."""
        from ..naming import deployment_of_pod

        pods = core_v1.list_namespaced_pod(namespace) if namespace else core_v1.list_pod_for_all_namespaces()
        n = 0
        for p in pods.items:
            labels = p.metadata.labels or {}
            self.learn(
                Resources(
                    namespace=p.metadata.namespace,
                    pod=p.metadata.name,
                    node=p.spec.node_name,
                    deployment=deployment_of_pod(p.metadata.name),
                    model=labels.get("model") or labels.get("app.kubernetes.io/model"),
                )
            )
            n += 1
        return n


class ClusterTopology:
    """Refreshes a graph from the Kubernetes API at most every `ttl` seconds; unreachable clusters
    leave the learned graph as it is."""

    def __init__(self, graph: TopologyGraph, core_v1: Any, ttl: float = 60.0) -> None:
        self.graph = graph
        self.core_v1 = core_v1
        self.ttl = ttl
        self._next = 0.0
        self.last_error: str | None = None

    def refresh(self, monotonic: float | None = None) -> None:
        now = time.monotonic() if monotonic is None else monotonic
        if now < self._next:
            return
        self._next = now + self.ttl
        try:
            self.graph.learn_from_cluster(self.core_v1)
            self.last_error = None
        except Exception as err:
            self.last_error = f"{type(err).__name__}: {err}"


def learn_and_fill(graph: TopologyGraph, ev: Event) -> Event:
    graph.learn(ev.resources, ev.occurred_at)
    filled = graph.fill(ev.resources)
    return ev if filled is ev.resources else ev.model_copy(update={"resources": filled})
