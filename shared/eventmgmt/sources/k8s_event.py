"""Kubernetes Events: core/v1 (as kubernetes-event-exporter's webhook posts it) and events.k8s.io/v1,
one Event per delivery or an EventList (`kubectl get events -o json`) of them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..model import Event, Resources, stable_hash
from ..naming import deployment_of_pod, deployment_of_replicaset, workload_of_owner
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE_CORE = "k8s-event"
SOURCE_V1 = "k8s-event-v1"


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    creationTimestamp: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class ObjectReference(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    apiVersion: str | None = None
    fieldPath: str | None = None


class EventSource(BaseModel):
    model_config = ConfigDict(extra="allow")

    component: str | None = None
    host: str | None = None


class EventSeries(BaseModel):
    model_config = ConfigDict(extra="allow")

    count: int | None = None
    lastObservedTime: str | None = None


class CoreEvent(BaseModel):
    """core/v1 Event; kubernetes-event-exporter adds `clusterName`. An Event recorded through the
    events.k8s.io API (the scheduler's, since Kubernetes 1.19) reads here with `eventTime` and
    `series` and no `firstTimestamp`, `lastTimestamp` or `count`."""

    model_config = ConfigDict(extra="allow")

    metadata: ObjectMeta
    involvedObject: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    eventTime: str | None = None
    count: int | None = None
    series: EventSeries | None = None
    type: str | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None
    clusterName: str | None = None


class V1Event(BaseModel):
    """events.k8s.io/v1 Event."""

    model_config = ConfigDict(extra="allow")

    apiVersion: Literal["events.k8s.io/v1"] = "events.k8s.io/v1"
    kind: Literal["Event"] = "Event"
    metadata: ObjectMeta
    regarding: ObjectReference
    related: ObjectReference | None = None
    eventTime: str | None = None
    series: EventSeries | None = None
    reportingController: str | None = None
    reportingInstance: str | None = None
    action: str | None = None
    reason: str | None = None
    note: str | None = None
    type: str | None = None
    deprecatedSource: EventSource | None = None
    deprecatedFirstTimestamp: str | None = None
    deprecatedLastTimestamp: str | None = None
    deprecatedCount: int | None = None


# kubelet names the container in the message when the event is about the whole pod (no fieldPath):
# "Back-off restarting failed container triton in pod triton-llama-..._serving(uid)", and the
# eviction manager's "... Container triton was using 30Gi, request is 16Gi, ..." (the first named).
_CONTAINER_IN_MESSAGE = re.compile(
    r"^Back-off restarting failed container (?P<a>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\b"
    r"|\bContainer (?P<b>[a-z0-9]([-a-z0-9]*[a-z0-9])?) was using\b"
)


# Workloads whose own events (FailedCreate, BackoffLimitExceeded, ...) name the deployment their pods
# are grouped by, as the collector's owner does (naming.workload_of_owner: a CronJob's Job names the
# CronJob, as its pods' names do).
_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})


def _resources(obj: ObjectReference, host: str | None, cluster: str | None, message: str | None) -> Resources:
    kind = obj.kind or ""
    pod = obj.name if kind == "Pod" else None
    deployment = None
    if kind in _WORKLOAD_KINDS:
        deployment = workload_of_owner(kind, obj.name)
    elif kind == "ReplicaSet":
        deployment = deployment_of_replicaset(obj.name)
    elif pod:
        deployment = deployment_of_pod(pod)
    container = None
    if obj.fieldPath and obj.fieldPath.startswith("spec.containers{"):
        container = obj.fieldPath[len("spec.containers{") : -1]
    elif pod and message:
        m = _CONTAINER_IN_MESSAGE.search(message)
        container = (m.group("a") or m.group("b")) if m else None
    return Resources(
        cluster=cluster,
        namespace=obj.namespace,
        node=obj.name if kind == "Node" else host,
        pod=pod,
        container=container,
        deployment=deployment,
    )


def _host_from_instance(instance: str | None) -> str | None:
    # NOTE: kubelet and node-problem-detector report as "<component>-<node name>" in reportingInstance.
    if not instance:
        return None
    for prefix in ("kubelet-", "kernel-monitor-"):
        if instance.startswith(prefix):
            return instance[len(prefix) :]
    return None


def _labels(
    obj: ObjectReference, type_: str | None, component: str | None, count: int | None, first: datetime | None
) -> dict[str, str]:
    """What correlation reads besides the resources; `count` and `first_seen` (how often and since
    when the Event has been seen) decide whether a Warning persists (correlation.persistence)."""
    labels = {
        "object_kind": obj.kind or "",
        "type": type_ or "",
        "component": component or "",
        "count": str(count) if count else "",
        "first_seen": first.isoformat() if first else "",
    }
    return {k: v for k, v in labels.items() if v}


class _Seen(NamedTuple):
    times: int | None
    last: str | None  # as sent: part of the event's identity
    when: datetime | None
    first: datetime | None


def _core_seen(ev: CoreEvent, where: str) -> _Seen:
    """How often and when a core/v1 Event was seen: `count`, `firstTimestamp` and `lastTimestamp`,
    or, for an Event recorded through events.k8s.io, its `series` (count, last observed) and
    `eventTime` (first observed)."""
    series = ev.series
    count = ev.count if ev.count or series is None or not series.count else series.count
    last = ev.lastTimestamp or (series.lastObservedTime if series else None)
    last_at = timestamp(ev.lastTimestamp, f"{where}.lastTimestamp")
    if last_at is None and series is not None:
        last_at = timestamp(series.lastObservedTime, f"{where}.series.lastObservedTime")
    first = timestamp(ev.firstTimestamp, f"{where}.firstTimestamp") or timestamp(ev.eventTime, f"{where}.eventTime")
    when = last_at or timestamp(ev.eventTime, f"{where}.eventTime") or first
    when = when or timestamp(ev.metadata.creationTimestamp, f"{where}.metadata.creationTimestamp")
    return _Seen(count, last, when, first)


def _core(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    ev = validate(CoreEvent, raw, where)
    obj = ev.involvedObject
    host = ev.source.host if ev.source else None
    component = (ev.source.component if ev.source else None) or ev.reportingComponent
    reason = ev.reason or "Unknown"
    seen = _core_seen(ev, where)
    uid = ev.metadata.uid or f"{ev.metadata.namespace}/{ev.metadata.name}"
    return [
        draft(
            ctx,
            index,
            source=SOURCE_CORE,
            identity=(uid, seen.times, seen.last),
            fingerprint="k8s:" + stable_hash(obj.kind, obj.namespace, obj.name, reason),
            signal=reason,
            occurred_at=seen.when,
            resources=_resources(obj, host, ev.clusterName or ctx.cluster, ev.message),
            labels=_labels(obj, ev.type, component, seen.times, seen.first),
            summary=ev.message or reason,
        )
    ]


def _v1(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    ev = validate(V1Event, raw, where)
    obj = ev.regarding
    host = (ev.deprecatedSource.host if ev.deprecatedSource else None) or _host_from_instance(ev.reportingInstance)
    component = (ev.deprecatedSource.component if ev.deprecatedSource else None) or ev.reportingController
    reason = ev.reason or ev.action or "Unknown"
    count = ev.series.count if ev.series and ev.series.count else ev.deprecatedCount
    when = timestamp(ev.series.lastObservedTime, f"{where}.series.lastObservedTime") if ev.series else None
    when = when or timestamp(ev.eventTime, f"{where}.eventTime")
    when = when or timestamp(ev.deprecatedLastTimestamp, f"{where}.deprecatedLastTimestamp")
    when = when or timestamp(ev.metadata.creationTimestamp, f"{where}.metadata.creationTimestamp")
    uid = ev.metadata.uid or f"{ev.metadata.namespace}/{ev.metadata.name}"
    # NOTE: in events.k8s.io/v1 `eventTime` is when the Event was first observed (its series the last)
    first = timestamp(ev.eventTime, f"{where}.eventTime") or timestamp(
        ev.deprecatedFirstTimestamp, f"{where}.deprecatedFirstTimestamp"
    )
    return [
        draft(
            ctx,
            index,
            source=SOURCE_V1,
            identity=(uid, count, ev.eventTime),
            fingerprint="k8s:" + stable_hash(obj.kind, obj.namespace, obj.name, reason),
            signal=reason,
            occurred_at=when,
            resources=_resources(obj, host, ctx.cluster, ev.note),
            labels=_labels(obj, ev.type, component, count, first),
            summary=ev.note or reason,
        )
    ]


def _each(body: Any, ctx: ParseContext, one: Callable[[Any, int, str, ParseContext], list[Event]]) -> Parsed:
    """One Event (index 0, field `body`), or each item of an EventList (`body.items.<i>`)."""
    if isinstance(body, dict) and body.get("kind") == "EventList":
        items = body.get("items")
        if not isinstance(items, list):
            raise InputError("body.items: an EventList needs a list of items", field="body.items")
        return each_record(items, ctx, lambda i: f"body.items.{i}", lambda raw, i, where: one(raw, i, where, ctx))
    return each_record([body], ctx, lambda i: "body", lambda raw, i, where: one(raw, i, where, ctx))


def parse_core(body: Any, ctx: ParseContext) -> Parsed:
    return _each(body, ctx, _core)


def parse_v1(body: Any, ctx: ParseContext) -> Parsed:
    return _each(body, ctx, _v1)
