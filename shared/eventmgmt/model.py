"""The canonical event every stage exchanges, whatever the source format."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EventClass(str, Enum):
    alert = "alert"
    change = "change"
    info = "info"


class Severity(str, Enum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.critical: 4,
    Severity.high: 3,
    Severity.medium: 2,
    Severity.low: 1,
    Severity.info: 0,
}


class Status(str, Enum):
    firing = "firing"
    resolved = "resolved"


# NOTE: the lengths of the store's columns for what senders name freely (PostgreSQL enforces them;
# one value too long failed its whole delivery): store/tables.py.
FINGERPRINT_CHARS = 80
KIND_CHARS = 64
CAPTURE_CHARS = 80


def bounded(value: str, limit: int) -> str:
    """`value`, or when it is longer than `limit` its head and a digest of the whole, so distinct
    values stay distinct."""
    if len(value) <= limit:
        return value
    return value[: limit - 17] + "~" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class Origin(BaseModel):
    """Where an event came from: the capture it arrived in and its position inside it."""

    model_config = ConfigDict(frozen=True)

    capture: str
    index: int = 0

    @field_validator("capture")
    @classmethod
    def _capture_fits(cls, v: str) -> str:
        return bounded(v, CAPTURE_CHARS)


class Resources(BaseModel):
    """Kubernetes and Triton objects an event is about; every field is optional."""

    model_config = ConfigDict(frozen=True)

    cluster: str | None = None
    namespace: str | None = None
    node: str | None = None
    nodepool: str | None = None
    pod: str | None = None
    container: str | None = None
    deployment: str | None = None
    model: str | None = None
    version: str | None = None
    gpu: str | None = None

    def keys(self) -> list[str]:
        """Topology keys ("pod:ns/name", "node:name", ...) this event touches."""
        ns = self.namespace or ""
        out: list[str] = []
        if self.node:
            out.append(f"node:{self.node}")
        if self.pod:
            out.append(f"pod:{ns}/{self.pod}")
        if self.deployment:
            out.append(f"deployment:{ns}/{self.deployment}")
        if self.model:
            out.append(f"model:{ns}/{self.model}")
        if self.gpu:
            out.append(f"gpu:{self.node or ''}/{self.gpu}")
        if self.nodepool:
            out.append(f"nodepool:{self.nodepool}")
        return out


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A short deterministic digest of JSON-serialisable parts (sorted keys)."""
    try:
        # NOTE: the same text json.dumps writes for a list of strings, built without the encoder
        # (every alert's id is one of these: the encoder's set-up cost more than the hash); a part
        # that is not a string makes the C escaper raise TypeError.
        raw = "[" + ",".join(map(_json_str, parts)) + "]"
    except TypeError:
        raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:length]


_json_str = json.encoder.encode_basestring_ascii


class Event(BaseModel):
    """One canonical event.

    `id` identifies one delivery of one source fact (stable across retries, so every stage can
    drop a repeat); `fingerprint` identifies the thing the event is about across its lifetime
    (an alert's firing and resolved share it).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: str
    fingerprint: str
    source: str
    signal: str = Field(description="source-specific name: alertname, event reason, audit verb...")
    kind: str = "unknown"
    cls: EventClass = Field(default=EventClass.info, alias="class")
    severity: Severity = Severity.info
    status: Status = Status.firing
    occurred_at: datetime
    received_at: datetime
    started_at: datetime | None = Field(
        default=None, description="start of the alert episode (Alertmanager startsAt), firing and resolved alike"
    )
    resources: Resources = Field(default_factory=Resources)
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    origin: Origin | None = None
    action: str | None = None
    runbook: str | None = None
    suppressed: bool = False

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint_fits(cls, v: str) -> str:
        return bounded(v, FINGERPRINT_CHARS)

    @field_validator("kind")
    @classmethod
    def _kind_fits(cls, v: str) -> str:
        return bounded(v, KIND_CHARS)

    @field_validator("occurred_at", "received_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        # NOTE: naive datetimes would compare wrongly with aware ones downstream; treat as UTC.
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @property
    def ordering_key(self) -> str:
        """Events of one cluster are enriched and correlated in order (a Pub/Sub ordering key)."""
        return self.resources.cluster or "default"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        return cls.model_validate(data)
