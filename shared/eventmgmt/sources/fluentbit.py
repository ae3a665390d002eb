"""Fluent Bit records: Triton's glog lines and JSON application logs, with Kubernetes metadata."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..model import Event, Resources, stable_hash
from ..naming import deployment_of_pod
from ..timeutil import parse_ts
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "log"

# glog, as Triton prints it: "E1123 12:00:00.123456 1 model_lifecycle.cc:654] message"
GLOG = re.compile(
    r"^(?P<sev>[IWEF])(?P<month>\d\d)(?P<day>\d\d) (?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)\s+"
    r"(?P<thread>\d+) (?P<file>[^:\]\s]+):(?P<line>\d+)\] (?P<msg>.*)$",
    re.DOTALL,
)
_MODEL_IN_MSG = re.compile(
    r"(?:failed to load|successfully loaded|loading:?|for model|unloading:?|model) '?(?P<model>[A-Za-z0-9_.\-]+)'?"
)
_GLOG_LEVEL = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}
_NUMBERS = re.compile(r"\d+")


class KubernetesMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    pod_name: str | None = None
    namespace_name: str | None = None
    pod_id: str | None = None
    host: str | None = None
    container_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    docker_id: str | None = None
    container_hash: str | None = None
    container_image: str | None = None


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")

    log: str | None = None
    message: str | None = None
    msg: str | None = None
    level: str | None = None
    severity: str | None = None
    stream: str | None = None
    time: str | None = None
    date: float | str | None = None
    kubernetes: KubernetesMeta = Field(default_factory=KubernetesMeta)


def _glog_time(m: re.Match[str], ref: datetime) -> datetime:
    # NOTE: glog omits the year; take the reference's, and step back a year across New Year.
    hh, mm, rest = m.group("time").split(":")
    ss, _, frac = rest.partition(".")
    dt = datetime(
        ref.year,
        int(m.group("month")),
        int(m.group("day")),
        int(hh),
        int(mm),
        int(ss),
        int((frac + "000000")[:6]),
        tzinfo=UTC,
    )
    if (dt - ref).days > 180:
        dt = dt.replace(year=ref.year - 1)
    return dt


def _app_log(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _app_time(stamp: Any) -> datetime | None:
    # NOTE: a time inside the application's own JSON line is a hint, not the wire format: if it
    # cannot be read, the record's time stands in and the line is kept.
    if not isinstance(stamp, str | int | float) or isinstance(stamp, bool):
        return None
    try:
        return parse_ts(stamp)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def _record(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    rec = validate(Record, raw, where)
    meta = rec.kubernetes
    text = rec.log if rec.log is not None else (rec.message if rec.message is not None else rec.msg)
    if text is None:
        raise InputError(f"{where}: a log record needs `log`, `message` or `msg`", field=f"{where}.log")
    text = text.rstrip("\n")
    ref_time = timestamp(rec.date, f"{where}.date") if isinstance(rec.date, (int, float)) else None
    ref_time = ref_time or timestamp(rec.time, f"{where}.time") or ctx.received_at
    labels: dict[str, str] = {"stream": rec.stream or ""}
    model = meta.labels.get("model")
    occurred = ref_time
    m = GLOG.match(text)
    if m:
        level = _GLOG_LEVEL[m.group("sev")]
        message = m.group("msg")
        signal = "triton"
        labels["file"] = m.group("file")
        try:
            occurred = _glog_time(m, ref_time)
        except ValueError:
            occurred = ref_time
        mm = _MODEL_IN_MSG.search(message)
        if mm:
            model = mm.group("model")
    else:
        app = _app_log(text)
        if app is not None:
            level = str(app.get("level") or app.get("severity") or rec.level or "info").lower()
            message = str(app.get("msg") or app.get("message") or text)
            signal = "app"
            stamp = app.get("ts") or app.get("time") or app.get("timestamp")
            occurred = _app_time(stamp) or ref_time
        else:
            level = str(rec.level or rec.severity or "info").lower()
            message = text
            signal = "text"
    labels["level"] = level
    labels = {k: v for k, v in labels.items() if v}
    pod = meta.pod_name
    resources = Resources(
        cluster=ctx.cluster,
        namespace=meta.namespace_name,
        node=meta.host,
        pod=pod,
        container=meta.container_name,
        deployment=deployment_of_pod(pod) or meta.labels.get("app.kubernetes.io/instance"),
        model=model,
    )
    return [
        draft(
            ctx,
            index,
            source=SOURCE,
            identity=(meta.pod_id or pod, meta.container_name, rec.time, rec.date, text),
            fingerprint="log:" + stable_hash(pod, level, _NUMBERS.sub("N", message)[:200]),
            signal=signal,
            occurred_at=occurred,
            resources=resources,
            labels=labels,
            summary=message,
        )
    ]


def parse(body: Any, ctx: ParseContext) -> Parsed:
    """One record, or the JSON array Fluent Bit's `http` output posts (each record on its own)."""
    if not isinstance(body, list):
        return each_record([body], lambda i: "body", lambda raw, i, where: _record(raw, i, where, ctx))
    if not body:
        raise InputError("body: empty list of log records", field="body")
    return each_record(body, lambda i: f"body[{i}]", lambda raw, i, where: _record(raw, i, where, ctx))
