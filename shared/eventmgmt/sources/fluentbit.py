"""Fluent Bit records: Triton's glog lines and JSON application logs, with Kubernetes metadata, from
the tail input (`log`), the CRI parser (`message`), Merge_Log (the application's fields at the top)
and the systemd input (journald fields: `MESSAGE`, `PRIORITY`, `_HOSTNAME`, ...)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..model import Event, Resources, stable_hash
from ..naming import deployment_of_pod
from ..timeutil import parse_ts
from .base import ParseContext, Parsed, draft, each_record, timestamp, validate

SOURCE = "log"

# Triton's log lines (triton-inference-server/common logging.cc; klog and glog print the same shape).
# Default format: "E1123 12:00:00.123456 1 model_lifecycle.cc:654] message"
GLOG = re.compile(
    r"^(?P<sev>[IWEF])(?P<month>\d\d)(?P<day>\d\d) (?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)\s+"
    r"(?P<thread>\d+) (?P<file>[^:\]\s]+):(?P<line>\d+)\] ?(?P<msg>.*)$",
    re.DOTALL,
)
# --log-format=ISO8601: "2024-05-20T20:03:26Z I 3415 model_lifecycle.cc:441] message"
ISO8601 = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (?P<sev>[IWEF]) +"
    r"(?P<thread>\d+) (?P<file>[^:\]\s]+):(?P<line>\d+)\] ?(?P<msg>.*)$",
    re.DOTALL,
)
# tritonserver's exit on a startup failure (FAIL_IF_ERR in server/src/common.h), printed without a
# preamble: "error: creating server: Internal - failed to load all models"
TRITON_EXIT = re.compile(
    r"^error: (?P<what>[^:]+): (?P<code>Unknown|Internal|Not found|Invalid argument|Unavailable|Unsupported"
    r"|Already exists|Cancelled) - (?P<msg>.*)$",
    re.DOTALL | re.IGNORECASE,
)
# The model a Triton line is about, most specific pattern first. Names are quoted in Triton's own
# messages; `loading: name:version` is the one unquoted form.
_MODEL_IN_MSG = (
    re.compile(r"(?i)\bmodel directory '(?P<model>[^']+)'"),
    re.compile(
        r"(?i)(?:successfully (?:un)?loaded|failed to (?:un)?load|failed to poll model|(?:un)?loading model"
        r"|Async(?:Un)?[Ll]oad\(\)|\bmodel) '(?P<model>[^']+)'"
    ),
    re.compile(r"(?i)\b(?:un)?loading:? (?P<model>[A-Za-z0-9_.\-]+)"),
)
_DECODER = json.JSONDecoder()
_GLOG_LEVEL = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}
# journald PRIORITY (syslog levels 0 emerg .. 7 debug) as the log levels classification reads.
_PRIORITY = {"0": "critical", "1": "critical", "2": "critical", "3": "error", "4": "warning"}
_PRIORITY.update({"5": "info", "6": "info", "7": "debug"})
# Docker's journald log driver names a Kubernetes container "k8s_<container>_<pod>_<namespace>_<uid>_<n>"
# (the pattern Fluent Bit's kubernetes filter uses with Use_Journal).
_JOURNAL_CONTAINER = re.compile(
    r"^k8s_(?P<container>[^._]+)(?:\.[^_]+)?_(?P<pod>[^_]+)_(?P<namespace>[^_]+)_[^_]+_[^_]+$"
)
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

    # NOTE: a map when the runtime already parsed the line (Docker's JSON, Merge_Log into `log`).
    log: str | dict[str, Any] | None = None
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


def _unquote(message: str) -> str:
    """Triton (24.06 on, TRITON_SERVER_ESCAPE_LOG_MESSAGES unset) and klog write the message as a JSON
    string; a multi-line entry's quoted heading is followed by its table. The text without quotes."""
    if message.startswith('"'):
        try:
            value, end = _DECODER.raw_decode(message)
        except ValueError:
            return message
        if isinstance(value, str):
            return value + message[end:]
    return message


def _model_in(message: str) -> str | None:
    for pattern in _MODEL_IN_MSG:
        m = pattern.search(message)
        if m:
            return m.group("model")
    return None


def _app_log(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _app_time(stamp: Any) -> datetime | None:
    # NOTE: a time inside the logged line (an application's JSON, an ISO8601 Triton line) is a hint,
    # not the wire format: if it cannot be read, the record's time stands in and the line is kept.
    if not isinstance(stamp, str | int | float) or isinstance(stamp, bool):
        return None
    try:
        return parse_ts(stamp)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def _journal(rec: Record) -> dict[str, str]:
    """journald fields of a systemd-input record, by their name without leading underscores and in
    upper case, whether the input ran with Strip_Underscores or Lowercase or not."""
    out: dict[str, str] = {}
    for k, v in (rec.model_extra or {}).items():
        if isinstance(v, str | int) and not isinstance(v, bool):
            out[k.lstrip("_").upper()] = str(v)
    return out


def _date(value: float | str | None, where: str) -> datetime | None:
    """The record time Fluent Bit's http output writes under `date`: epoch seconds (`double`, the
    default, or `epoch`), epoch milliseconds (`epoch_ms`), or an ISO 8601 / java_sql_timestamp
    string. A number out of range refuses the record; a string that is not a time is ignored, as
    it always was."""
    if isinstance(value, str):
        return _app_time(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e11:
        value = value / 1000  # NOTE: no epoch in seconds reaches 1e11 before the year 5138.
    return timestamp(value, where)


def _text(rec: Record, journal: dict[str, str], where: str) -> str | dict[str, Any]:
    for value in (rec.log, rec.message, rec.msg, journal.get("MESSAGE")):
        if value is not None:
            return value
    raise InputError(f"{where}: a log record needs `log`, `message`, `msg` or `MESSAGE`", field=f"{where}.log")


class _Line(NamedTuple):
    """What a logged line says: how severe, its message, what kind of line it is (`signal`), when it
    was written and the model it names (None: the record's own label)."""

    level: str
    message: str
    signal: str
    occurred: datetime
    model: str | None = None
    file: str | None = None


def _triton_line(m: re.Match[str], ref_time: datetime) -> _Line:
    """A Triton line in glog's or ISO 8601's format."""
    message = _unquote(m.group("msg"))
    if m.re is ISO8601:
        occurred = _app_time(m.group("stamp")) or ref_time
    else:
        try:
            occurred = _glog_time(m, ref_time)
        except ValueError:
            occurred = ref_time
    return _Line(_GLOG_LEVEL[m.group("sev")], message, "triton", occurred, _model_in(message), m.group("file"))


def _read_line(
    text: str, app: dict[str, Any] | None, rec: Record, journal: dict[str, str], ref_time: datetime
) -> _Line:
    """The line as Triton's (glog, ISO 8601, its exit on a startup failure), an application's JSON
    (parsed already when `app` is given), or plain text leveled by the record or journald."""
    if app is None:
        m = GLOG.match(text) or ISO8601.match(text)
        if m:
            return _triton_line(m, ref_time)
        if TRITON_EXIT.match(text):
            # NOTE: tritonserver prints this and exits 1: the server is down, whatever the container.
            return _Line("fatal", text, "triton_exit", ref_time)
        app = _app_log(text)
    if app is not None:
        level = str(app.get("level") or app.get("severity") or rec.level or "info").lower()
        stamp = app.get("ts") or app.get("time") or app.get("timestamp")
        return _Line(level, str(app.get("msg") or app.get("message") or text), "app", _app_time(stamp) or ref_time)
    level = str(rec.level or rec.severity or _PRIORITY.get(journal.get("PRIORITY", ""), "info")).lower()
    return _Line(level, text, "text", ref_time)


def _record_time(rec: Record, journal: dict[str, str], where: str) -> datetime | None:
    """When Fluent Bit read the record: its `date`, its `time`, or journald's realtime stamp."""
    ref_time = _date(rec.date, f"{where}.date") or timestamp(rec.time, f"{where}.time")
    realtime = _realtime(journal)
    if ref_time is None and realtime and realtime.isdigit():
        ref_time = timestamp(int(realtime) / 1_000_000, f"{where}._SOURCE_REALTIME_TIMESTAMP")
    return ref_time


def _realtime(journal: dict[str, str]) -> str | None:
    return journal.get("SOURCE_REALTIME_TIMESTAMP") or journal.get("REALTIME_TIMESTAMP")


def _labels(rec: Record, journal: dict[str, str], line: _Line) -> dict[str, str]:
    labels: dict[str, str] = {"stream": rec.stream or ""}
    if line.file is not None:
        labels["file"] = line.file
    labels["level"] = line.level
    labels["image"] = rec.kubernetes.container_image or ""
    labels["unit"] = journal.get("SYSTEMD_UNIT", "")
    labels["identifier"] = journal.get("SYSLOG_IDENTIFIER", "")
    return {k: v for k, v in labels.items() if v}


def _workload(meta: KubernetesMeta, journal: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(pod, namespace, container): Kubernetes metadata's, or what Docker's journald driver named."""
    pod, namespace, container = meta.pod_name, meta.namespace_name, meta.container_name
    cm = _JOURNAL_CONTAINER.match(journal.get("CONTAINER_NAME", ""))
    if cm and not pod:
        pod, namespace, container = cm.group("pod"), cm.group("namespace"), cm.group("container")
    return pod, namespace, container


def _record(raw: Any, index: int, where: str, ctx: ParseContext) -> list[Event]:
    if isinstance(raw, str):
        raise InputError(f"{where}: expected a JSON object (a malformed JSON line?)", field=where)
    rec = validate(Record, raw, where)
    meta = rec.kubernetes
    journal = _journal(rec)
    found = _text(rec, journal, where)
    app: dict[str, Any] | None = found if isinstance(found, dict) else None
    text = json.dumps(found) if app is not None else str(found).rstrip("\n")
    ref_time = _record_time(rec, journal, where) or ctx.received_at
    line = _read_line(text, app, rec, journal, ref_time)
    pod, namespace, container = _workload(meta, journal)
    resources = Resources(
        cluster=ctx.cluster,
        namespace=namespace,
        node=meta.host or journal.get("HOSTNAME"),
        pod=pod,
        container=container,
        deployment=deployment_of_pod(pod) or meta.labels.get("app.kubernetes.io/instance"),
        model=line.model or meta.labels.get("model"),
    )
    realtime = _realtime(journal)
    identity: tuple[Any, ...] = (meta.pod_id or pod, container, rec.time, rec.date, text)
    if journal.get("HOSTNAME") or journal.get("SYSTEMD_UNIT") or realtime:
        # NOTE: journald records without Kubernetes metadata are told apart by host, unit and time.
        identity += (journal.get("HOSTNAME"), journal.get("SYSTEMD_UNIT"), realtime)
    return [
        draft(
            ctx,
            index,
            source=SOURCE,
            identity=identity,
            fingerprint="log:" + stable_hash(pod, line.level, _NUMBERS.sub("N", line.message)[:200]),
            signal=line.signal,
            occurred_at=line.occurred,
            resources=resources,
            labels=_labels(rec, journal, line),
            summary=line.message,
        )
    ]


def parse(body: Any, ctx: ParseContext) -> Parsed:
    """One record, or the JSON array Fluent Bit's `http` output posts (each record on its own)."""
    if not isinstance(body, list):
        return each_record([body], ctx, lambda i: "body", lambda raw, i, where: _record(raw, i, where, ctx))
    if not body:
        raise InputError("body: empty list of log records", field="body")
    return each_record(body, ctx, lambda i: f"body[{i}]", lambda raw, i, where: _record(raw, i, where, ctx))
