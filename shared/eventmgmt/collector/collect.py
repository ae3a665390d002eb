"""One collector run: evaluate rules against Prometheus and read the cluster, then emit events only
for what changed since the last run (a condition starting to fire, or ending)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..logjson import log_json
from ..model import Event, Origin, Status, stable_hash
from ..sources.alertmanager import resources_of
from .config import CollectorConfig, Rule
from .kube import WORKLOAD_LABEL, Observation, observe_nodes, observe_pods
from .state import CollectorState, Condition

log = logging.getLogger("eventmgmt.collector")
SOURCE = "collector"


class PromQL(Protocol):
    def custom_query(self, query: str) -> list[dict[str, Any]]: ...


@dataclass
class RunResult:
    events: list[Event] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    observed: int = 0


def _key(signal: str, labels: dict[str, str], at: datetime | None = None) -> str:
    return stable_hash(signal, sorted(labels.items()), at.isoformat() if at else None, length=20)


def _identity(o: Observation, rule: Rule | None) -> dict[str, str]:
    """The labels that tell one condition from another. NOTE: a pod's workload (read from the cluster)
    never changes for the pod, and conditions tracked before it was read keep their keys."""
    if rule is not None or WORKLOAD_LABEL not in o.labels:
        return o.labels
    return {k: v for k, v in o.labels.items() if k != WORKLOAD_LABEL}


def _event(cond: Condition, key: str, status: Status, now: datetime, summary: str, severity: str) -> Event:
    labels = {**cond.labels, "alertname": cond.signal, "severity": severity}
    occurred = cond.since if status is Status.firing else now
    return Event(
        id=f"{SOURCE}:{stable_hash(key, cond.since.isoformat(), status.value, length=24)}",
        fingerprint=f"col:{key}",
        source=SOURCE,
        signal=cond.signal,
        status=status,
        occurred_at=occurred,
        received_at=now,
        started_at=cond.since,
        resources=resources_of(cond.labels),
        labels=labels,
        summary=summary,
        origin=Origin(capture=f"collector-{now.strftime('%Y%m%dT%H%M%S')}"),
    )


def rule_observations(prom: PromQL, rules: Iterable[Rule]) -> list[tuple[Observation, Rule]]:
    out = []
    for rule in rules:
        for sample in prom.custom_query(rule.expr):
            labels = {k: str(v) for k, v in sample.get("metric", {}).items() if k != "__name__"}
            value = sample.get("value", [None, ""])[1]
            out.append((Observation(rule.name, labels, f"{rule.summary or rule.name} (value {value})"), rule))
    return out


# What one run saw, by condition key: each observation and the rule that made it (None: read from
# the cluster, or the collector's own error).
_Seen = dict[str, tuple[Observation, Rule | None]]


def run_once(
    now: datetime, cfg: CollectorConfig, state: CollectorState, prom: PromQL | None, core_v1: Any | None
) -> RunResult:
    """Mutates `state`; returns the events to publish. Unreachable sources become one collector_error
    condition each (firing while down, resolved when back) and never resolve what they reported."""
    result = RunResult()
    seen, evaluated = _observe(cfg, prom, core_v1, result)
    result.observed = len(seen)
    _fire(now, state, seen, result)
    _resolve(now, state, seen, evaluated, result)
    return result


def _observe(
    cfg: CollectorConfig, prom: PromQL | None, core_v1: Any | None, result: RunResult
) -> tuple[_Seen, set[str]]:
    """Every condition seen this run, and which families of conditions were read successfully (a
    source that cannot be read is noted in `result` and seen as one CollectorError)."""
    seen: _Seen = {}
    evaluated: set[str] = set()
    for target, read in (("prometheus", prom), ("kubernetes", core_v1 if cfg.kubernetes else None)):
        if read is None:
            continue
        try:
            if target == "prometheus":
                obs: list[tuple[Observation, Rule | None]] = list(rule_observations(read, cfg.rules))
            else:
                obs = [(o, None) for o in [*observe_pods(read, cfg.namespaces), *observe_nodes(read)]]
        except Exception as err:
            msg = f"{type(err).__name__}: {err}"[:500]
            result.errors[target] = msg
            log_json(log, "ERROR", msg, component="collector", target=target)
            o = Observation("CollectorError", {"target": target}, f"collector cannot read {target}: {msg}")
            seen[_key(o.signal, o.labels)] = (o, None)
            continue
        evaluated.add(target)
        for o, rule in obs:
            seen[_key(o.signal, _identity(o, rule), o.at if o.point else None)] = (o, rule)
    evaluated.add("errors")
    return seen, evaluated


def _fire(now: datetime, state: CollectorState, seen: _Seen, result: RunResult) -> None:
    """Start tracking what is new; a condition fires once seen for its rule's `for` (at once without one)."""
    for key, (o, rule) in seen.items():
        cond = state.conditions.get(key)
        wait = rule.for_ if rule is not None else None
        severity = rule.severity if rule is not None else ("warning" if o.signal != "CollectorError" else "info")
        if cond is None:
            cond = Condition(o.signal, o.labels, o.at if (o.point and o.at) else now, stateful=not o.point)
            state.conditions[key] = cond
        if not cond.firing and (wait is None or now - cond.since >= wait):
            cond.firing = True
            result.events.append(_event(cond, key, Status.firing, now, o.summary, severity))


def _resolve(now: datetime, state: CollectorState, seen: _Seen, evaluated: set[str], result: RunResult) -> None:
    """Forget what is no longer seen in a family read this run; a firing stateful condition resolves."""
    for key, cond in list(state.conditions.items()):
        if key in seen:
            continue
        family = (
            "errors"
            if cond.signal == "CollectorError"
            else ("kubernetes" if cond.signal in _KUBE_SIGNALS else "prometheus")
        )
        if family not in evaluated:
            continue  # NOTE: the source was unreachable this run: we do not know, so nothing resolves
        del state.conditions[key]
        if cond.firing and cond.stateful:
            result.events.append(_event(cond, key, Status.resolved, now, f"{cond.signal} resolved", "info"))


_KUBE_SIGNALS = {"ContainerOOMKilled", "CrashLoopBackOff", "KubePodNotReady", "KubeNodeNotReady", "NodeUnschedulable"}
