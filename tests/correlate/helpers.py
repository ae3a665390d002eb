"""Builders for synthetic canonical events in correlation tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from eventmgmt.model import Event, EventClass, Origin, Resources, Severity, Status
from eventmgmt.naming import deployment_of_pod

T0 = datetime(2026, 11, 7, 8, 0, tzinfo=UTC)
_ids = count()

CLASS_OF = {
    "node_drain": EventClass.change,
    "pod_eviction": EventClass.change,
    "pod_stop": EventClass.change,
    "deployment_change": EventClass.change,
    "pod_lifecycle": EventClass.info,
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(
    kind: str,
    minute: float,
    *,
    pod: str | None = None,
    node: str | None = None,
    model: str | None = None,
    deployment: str | None = None,
    status: str = "firing",
    fp: str | None = None,
    source: str = "alertmanager",
    name: str | None = None,
    received: float | None = None,
    severity: Severity = Severity.high,
) -> Event:
    n = next(_ids)
    cls = CLASS_OF.get(kind, EventClass.alert)
    return Event(
        id=f"{source}:{name or n}:{status}:{minute}",
        fingerprint=fp or f"fp:{kind}:{pod or node or deployment or model}",
        source=source if cls is EventClass.alert else "k8s-audit",
        signal=kind,
        kind=kind,
        cls=cls,
        severity=severity if cls is EventClass.alert else Severity.info,
        status=Status(status),
        occurred_at=at(minute),
        received_at=at(received if received is not None else minute),
        resources=Resources(
            namespace="inference", pod=pod, node=node, model=model, deployment=deployment or deployment_of_pod(pod)
        ),
        summary=f"{kind} {pod or node or deployment or model}",
        origin=Origin(capture=name or f"c{n}", index=0),
        started_at=at(minute) if source == "alertmanager" and status == "firing" else None,
    )
