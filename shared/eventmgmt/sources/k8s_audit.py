"""Kubernetes audit webhook backend: an audit.k8s.io/v1 EventList."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ..model import Event, Resources, stable_hash
from ..naming import deployment_of_pod
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "k8s-audit"
_WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


class UserInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    username: str | None = None
    groups: list[str] = Field(default_factory=list)


class ObjectRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiGroup: str | None = None
    apiVersion: str | None = None
    subresource: str | None = None


class Status(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: int | None = None
    status: str | None = None
    reason: str | None = None


class AuditEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["Event"] = "Event"
    apiVersion: str | None = None
    level: str | None = None
    auditID: str
    stage: str
    requestURI: str | None = None
    verb: str
    user: UserInfo = Field(default_factory=UserInfo)
    sourceIPs: list[str] = Field(default_factory=list)
    userAgent: str | None = None
    objectRef: ObjectRef | None = None
    responseStatus: Status | None = None
    requestObject: Any = None
    responseObject: Any = None
    requestReceivedTimestamp: str | None = None
    stageTimestamp: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class EventList(BaseModel):
    """The envelope; each item is validated on its own, so one bad record refuses only itself."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["EventList"]
    apiVersion: Literal["audit.k8s.io/v1"]
    items: list[Any]


def _spec_field(obj: Any, name: str) -> tuple[bool, Any]:
    """(present, value) of `spec.<name>` in a request body: a strategic-merge or merge patch, a full
    object (kubectl cordon sends {"spec":{"unschedulable":true}}, uncordon {"spec":{"unschedulable":
    null}}), or a JSON patch (a list of operations; `remove` reads as null)."""
    if isinstance(obj, dict):
        spec = obj.get("spec")
        if isinstance(spec, dict) and name in spec:
            return True, spec[name]
    elif isinstance(obj, list):
        for op in obj:
            if isinstance(op, dict) and op.get("path") == f"/spec/{name}":
                return True, None if op.get("op") == "remove" else op.get("value")
    return False, None


def _unschedulable(obj: Any) -> bool | None:
    present, value = _spec_field(obj, "unschedulable")
    return bool(value) if present else None


def _replicas(obj: Any) -> str | None:
    present, value = _spec_field(obj, "replicas")
    return str(value) if present and isinstance(value, int) and not isinstance(value, bool) else None


def _image_of(obj: Any) -> str | None:
    try:
        containers = obj["spec"]["template"]["spec"]["containers"]
        return ",".join(str(c.get("image")) for c in containers if c.get("image")) or None
    except (KeyError, TypeError, AttributeError):
        return None


def _signal(ev: AuditEvent) -> str:
    """A verb-and-object name the kind rules match on, e.g. NodeCordon or DeploymentUpdate."""
    ref = ev.objectRef or ObjectRef()
    res, sub, verb = ref.resource or "", ref.subresource or "", ev.verb
    if res == "nodes" and verb in ("patch", "update") and not sub:
        flag = _unschedulable(ev.requestObject)
        if flag is True:
            return "NodeCordon"
        if flag is False:
            return "NodeUncordon"
    if res == "pods" and sub == "eviction" and verb == "create":
        return "PodEviction"
    if res == "deployments" and sub == "scale" and verb in ("patch", "update"):
        return "DeploymentScale"
    if res == "deployments" and not sub and verb in ("patch", "update", "create"):
        return "DeploymentUpdate"
    if res == "deployments" and verb == "delete":
        return "DeploymentDelete"
    if res == "pods" and verb == "delete" and not sub:
        return "PodDelete"
    return f"{verb}:{res}{'/' + sub if sub else ''}"


class _Request(NamedTuple):
    """What an audited request did beyond its verb and object: its answer's code, the image a
    rollout sets, the replicas a scale asks for, and whether it was a dry run."""

    code: int | None
    image: str | None
    replicas: str | None
    dry_run: bool


def _request(ev: AuditEvent, signal: str) -> _Request:
    code = ev.responseStatus.code if ev.responseStatus else None
    replicas = _replicas(ev.requestObject) if signal == "DeploymentScale" else None
    # NOTE: `--dry-run=server` is audited like the real request, with dryRun=All in the URI; it
    # changed nothing, so it must not read as a drain or a rollout.
    dry_run = "dryRun=All" in (ev.requestURI or "")
    return _Request(code, _image_of(ev.requestObject), replicas, dry_run)


def _resources(ref: ObjectRef, ctx: ParseContext) -> Resources:
    res = ref.resource or ""
    pod = ref.name if res == "pods" else None
    return Resources(
        cluster=ctx.cluster,
        namespace=ref.namespace,
        node=ref.name if res == "nodes" else None,
        pod=pod,
        deployment=ref.name if res == "deployments" else deployment_of_pod(pod),
    )


def _labels(ev: AuditEvent, ref: ObjectRef, req: _Request) -> dict[str, str]:
    labels = {
        "verb": ev.verb,
        "resource": ref.resource or "",
        "stage": ev.stage,
        "user": ev.user.username or "",
        "code": str(req.code) if req.code is not None else "",
        "write": "true" if ev.verb in _WRITE_VERBS else "false",
    }
    if ref.subresource:
        labels["subresource"] = ref.subresource
    if req.image:
        labels["image"] = req.image
    if req.replicas is not None:
        labels["replicas"] = req.replicas
    if req.dry_run:
        labels["dry_run"] = "true"
    return {k: v for k, v in labels.items() if v}


def _summary(ev: AuditEvent, ref: ObjectRef, req: _Request) -> str:
    """`who verb resource[/subresource] namespace/name`, and what the request set and got."""
    resource = (ref.resource or "") + (f"/{ref.subresource}" if ref.subresource else "")
    target = f"{ref.namespace + '/' if ref.namespace else ''}{ref.name or ''}"
    return (
        f"{ev.user.username or 'unknown'} {ev.verb} {resource} {target}"
        + (f" (image {req.image})" if req.image else "")
        + (f" to {req.replicas} replicas" if req.replicas is not None else "")
        + (" (dry run)" if req.dry_run else "")
        + (f" -> {req.code}" if req.code is not None else "")
    )


def _record(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    ev = validate(AuditEvent, raw, where)
    ref = ev.objectRef or ObjectRef()
    resources = _resources(ref, ctx)
    signal = _signal(ev)
    req = _request(ev, signal)
    return [
        draft(
            ctx,
            index,
            source=SOURCE,
            identity=(ev.auditID, ev.stage),
            fingerprint="audit:" + stable_hash(signal, ref.namespace, ref.name),
            signal=signal,
            occurred_at=timestamp(ev.stageTimestamp, f"{where}.stageTimestamp")
            or timestamp(ev.requestReceivedTimestamp, f"{where}.requestReceivedTimestamp"),
            resources=resources,
            labels=_labels(ev, ref, req),
            summary=_summary(ev, ref, req),
        )
    ]


def parse(body: Any, ctx: ParseContext) -> Parsed:
    lst = validate(EventList, body)
    return each_record(lst.items, ctx, lambda i: f"body.items.{i}", lambda raw, i, where: _record(raw, i, where, ctx))
