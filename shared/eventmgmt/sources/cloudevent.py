"""CloudEvents 1.0 in binary mode (ce-* headers) and structured mode (application/cloudevents+json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..model import Event, Resources, Status, stable_hash
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "cloudevent"
_RESOURCE_FIELDS = ("cluster", "namespace", "node", "pod", "container", "deployment", "model", "version", "gpu")


class StructuredCloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    specversion: str
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    data: Any = None


def from_binary(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    """Binary-mode headers and body as the structured-mode dict."""
    attrs: dict[str, Any] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk.startswith("ce-"):
            attrs[lk[3:]] = v
    for need in ("specversion", "id", "source", "type"):
        if not attrs.get(need):
            raise InputError(f"header ce-{need} is required in binary mode", field=f"ce-{need}")
    attrs["data"] = data
    return attrs


def _event(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    ce = validate(StructuredCloudEvent, raw, where)
    if not ce.specversion.startswith("1."):
        raise InputError(f"specversion {ce.specversion!r} is not supported (1.0 is)", field=f"{where}.specversion")
    data = ce.data if isinstance(ce.data, dict) else {}
    extras = ce.model_extra or {}
    res_src: dict[str, Any] = {k: v for k, v in extras.items() if k in _RESOURCE_FIELDS}
    nested = data.get("resources")
    if isinstance(nested, dict):
        res_src.update(nested)
    for f in _RESOURCE_FIELDS:
        if isinstance(data.get(f), (str, int)):
            res_src.setdefault(f, data[f])
    resources = Resources(**{k: str(v) for k, v in res_src.items() if k in _RESOURCE_FIELDS and v is not None})
    labels = {k: str(v) for k, v in extras.items() if isinstance(v, (str, int, float, bool))}
    labels["ce_source"] = ce.source
    if isinstance(data.get("labels"), dict):
        labels.update({str(k): str(v) for k, v in data["labels"].items()})
    status = Status.resolved if str(data.get("status", "")).lower() == "resolved" else Status.firing
    summary = str(data.get("summary") or data.get("message") or ce.subject or ce.type)
    return [
        draft(
            ctx,
            index,
            source=SOURCE,
            identity=(ce.source, ce.id),
            fingerprint="ce:" + stable_hash(ce.source, ce.type, ce.subject, sorted(resources.model_dump().items())),
            signal=ce.type,
            occurred_at=timestamp(ce.time, f"{where}.time"),
            resources=resources,
            labels=labels,
            summary=summary,
            status=status,
        )
    ]


def parse(body: Any, ctx: ParseContext) -> Parsed:
    return each_record([body], lambda i: "body", lambda raw, i, where: _event(raw, i, where, ctx))
