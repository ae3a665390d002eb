"""The node <-> pod <-> deployment <-> model <-> GPU graph, learned from events (the collector's carry
what it read from the Kubernetes API: each pod's node and owner).

Only facts that name two resources at once are learned (a kubelet event's pod and host, a Fluent Bit
record's pod and node, an alert's pod and model): each pod keeps its latest node, deployment and model,
so a rescheduled pod follows its new node; a pod seen serving two models has no model filled in. Memory is bounded by an LRU on pods."""

from __future__ import annotations

import threading
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


def learn_and_fill(graph: TopologyGraph, ev: Event) -> Event:
    graph.learn(ev.resources, ev.occurred_at)
    filled = graph.fill(ev.resources)
    return ev if filled is ev.resources else ev.model_copy(update={"resources": filled})
