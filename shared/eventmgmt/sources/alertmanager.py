"""Alertmanager webhook payload, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..clock import sane
from ..model import Event, Resources, Status, stable_hash
from ..naming import deployment_of_pod
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "alertmanager"


class WireAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class WireWebhook(BaseModel):
    """The envelope; each alert is validated on its own, so one bad alert refuses only itself."""

    model_config = ConfigDict(extra="allow")

    version: str = "4"
    groupKey: str | None = None
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    groupLabels: dict[str, Any] = Field(default_factory=dict)
    commonLabels: dict[str, Any] = Field(default_factory=dict)
    commonAnnotations: dict[str, Any] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[Any] = Field(min_length=1)


def _first(labels: dict[str, str], *names: str) -> str | None:
    for n in names:
        if labels.get(n):
            return labels[n]
    return None


def resources_of(labels: dict[str, str], cluster: str | None = None) -> Resources:
    """Resource references from the label names kube-prometheus, kube-state-metrics, DCGM exporter
    and Triton's metrics use."""
    pod = _first(labels, "pod", "pod_name", "exported_pod")
    return Resources(
        cluster=_first(labels, "cluster") or cluster,
        namespace=_first(labels, "namespace", "exported_namespace", "kubernetes_namespace"),
        node=_first(labels, "node", "Hostname", "hostname", "kubernetes_node", "instance_node"),
        pod=pod,
        container=_first(labels, "container", "container_name"),
        deployment=_first(labels, "deployment") or deployment_of_pod(pod),
        model=_first(labels, "model", "model_name"),
        version=_first(labels, "version", "model_version"),
        gpu=_first(labels, "UUID", "gpu_uuid", "gpu"),
    )


def _alert(raw: Any, index: int, where: str, hook: WireWebhook, ctx: ParseContext) -> list[Event]:
    a = validate(WireAlert, raw, where)
    starts = timestamp(a.startsAt, f"{where}.startsAt")
    ends = timestamp(a.endsAt, f"{where}.endsAt")
    status = Status(a.status)
    fp = a.fingerprint or stable_hash(sorted(a.labels.items()))
    summary = a.annotations.get("summary") or a.annotations.get("description") or a.labels.get("alertname", "")
    labels = dict(a.labels)
    for k in ("runbook_url", "summary", "description"):
        if k in a.annotations:
            labels[f"annotation_{k}"] = a.annotations[k]
    ev = draft(
        ctx,
        index,
        source=SOURCE,
        identity=(fp, a.startsAt, status.value),
        fingerprint=f"am:{fp}",
        signal=a.labels.get("alertname", "unnamed"),
        occurred_at=(ends if status is Status.resolved and ends else starts),
        resources=resources_of(a.labels, ctx.cluster),
        labels=labels,
        summary=summary,
        status=status,
    )
    return [ev.model_copy(update={"started_at": sane(starts, ctx.received_at)[0] if starts else None})]


def parse(body: Any, ctx: ParseContext) -> Parsed:
    hook = validate(WireWebhook, body)
    return each_record(
        hook.alerts, lambda i: f"body.alerts.{i}", lambda raw, i, where: _alert(raw, i, where, hook, ctx)
    )
