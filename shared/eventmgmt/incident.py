"""What correlate publishes on `events-correlated` and what route, archive and the dashboard read."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .model import Event, Origin, Severity


class IncidentStatus(str, Enum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class IncidentAction(str, Enum):
    opened = "opened"
    updated = "updated"
    resolved = "resolved"
    reopened = "reopened"
    acknowledged = "acknowledged"
    merged = "merged"


class EventRef(BaseModel):
    """A member event as the incident lists it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    cls: str
    status: str
    occurred_at: datetime
    summary: str = ""
    origin: Origin | None = None


class IncidentSnapshot(BaseModel):
    """An incident (kind "incident") or a change record (kind "change") as it stands now.

    `version` grows with every change, so a consumer can drop a stale snapshot it receives late."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int
    kind: Literal["incident", "change"]
    title: str
    chain: str | None = None
    root_kind: str
    severity: Severity
    status: IncidentStatus
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    root_cause: EventRef
    changes: list[EventRef] = Field(default_factory=list)
    member_count: int
    firing: int = Field(description="member alerts still firing")
    resources: dict[str, list[str]] = Field(
        default_factory=dict, description="nodes, pods, models, ...: at most 50 names each, most recent first"
    )
    resource_counts: dict[str, int] = Field(default_factory=dict, description="how many of each, listed or not")
    action: str | None = None
    runbook: str | None = Field(default=None, description="the root cause's own runbook, else the response matrix's")
    source_url: str | None = Field(default=None, description="the root cause alert's link (Alertmanager generatorURL)")
    acknowledged_by: str | None = None
    merged_into: str | None = Field(default=None, description="set when this incident was folded into another")
    recurrence_of: str | None = Field(default=None, description="the resolved incident of an earlier episode")
    recurrences: int = Field(default=0, description="earlier episodes of this problem in the last 24 hours")


class CorrelatedMessage(BaseModel):
    """One message on `events-correlated`: an event with the incident it joined (if any), and the
    incident's snapshot when this event changed it."""

    model_config = ConfigDict(frozen=True)

    event: Event
    incident_id: str | None = None
    action: IncidentAction | None = None
    incident: IncidentSnapshot | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
