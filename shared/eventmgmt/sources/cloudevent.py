"""CloudEvents 1.0 over HTTP: binary mode (ce-* headers, the body is the data in any media type),
structured mode (application/cloudevents+json) and batched mode (application/cloudevents-batch+json,
a JSON array of structured events)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..model import Event, Resources, Status, stable_hash
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "cloudevent"
# Data that is not a JSON object is kept as text in the `data` label, up to this many characters.
_DATA_TEXT_LIMIT = 4000
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
    data_base64: str | None = None


def from_binary(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    """Binary-mode headers and body as the structured-mode dict. `data` is the decoded JSON value, or
    the raw body (bytes) when its media type is not JSON: kept as text, or as `data_base64` when it
    is not UTF-8, as the JSON event format writes binary data."""
    attrs: dict[str, Any] = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk.startswith("ce-"):
            attrs[lk[3:]] = v
        elif lk == "content-type" and v:
            attrs["datacontenttype"] = v
    for need in ("specversion", "id", "source", "type"):
        if not attrs.get(need):
            raise InputError(f"header ce-{need} is required in binary mode", field=f"ce-{need}")
    if isinstance(data, bytes):
        if data.strip():
            try:
                attrs["data"] = data.decode("utf-8")
            except UnicodeDecodeError:
                attrs["data_base64"] = base64.b64encode(data).decode()
    else:
        attrs["data"] = data
    return attrs


def _data(ce: StructuredCloudEvent, where: str) -> tuple[dict[str, Any], str | None]:
    """The data as a mapping to read fields from, and as text when it is not a JSON object."""
    if isinstance(ce.data, dict):
        return ce.data, None
    if ce.data is not None:
        return {}, ce.data if isinstance(ce.data, str) else json.dumps(ce.data)
    if ce.data_base64 is None:
        return {}, None
    try:
        raw = base64.b64decode(ce.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}.data_base64: not valid base64", field=f"{where}.data_base64") from None
    try:
        return {}, raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}, None


def _event(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    ce = validate(StructuredCloudEvent, raw, where)
    if not ce.specversion.startswith("1."):
        raise InputError(f"specversion {ce.specversion!r} is not supported (1.0 is)", field=f"{where}.specversion")
    data, text = _data(ce, where)
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
    if ce.datacontenttype:
        labels["datacontenttype"] = ce.datacontenttype
    if text is not None:
        labels["data"] = text[:_DATA_TEXT_LIMIT]
    elif ce.data_base64 is not None:
        labels["data_base64"] = "true"
    status = Status.resolved if str(data.get("status", "")).lower() == "resolved" else Status.firing
    plain = text.strip().splitlines()[0] if text and (ce.datacontenttype or "").startswith("text/plain") else None
    summary = str(data.get("summary") or data.get("message") or plain or ce.subject or ce.type)
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
    """One structured event, or a batch (a JSON array; it may be empty), each event on its own."""
    if isinstance(body, list):
        return each_record(body, ctx, lambda i: f"body[{i}]", lambda raw, i, where: _event(raw, i, where, ctx))
    return each_record([body], ctx, lambda i: "body", lambda raw, i, where: _event(raw, i, where, ctx))
