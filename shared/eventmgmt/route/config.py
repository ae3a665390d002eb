"""Routing configuration: which receivers get which incidents, and the receivers themselves."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..model import Severity

SinkType = Literal["pagerduty", "slack", "webhook", "change"]


class RouteMatch(BaseModel):
    """All given fields must match (regular expressions, matched in full)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: re.Pattern[str] | None = None
    kind: re.Pattern[str] | None = Field(default=None, description="incident or change")
    root_kind: re.Pattern[str] | None = None
    namespace: re.Pattern[str] | None = None
    model: re.Pattern[str] | None = None
    team: re.Pattern[str] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _re(cls, v: Any) -> Any:
        return re.compile(str(v)) if v is not None and not isinstance(v, re.Pattern) else v


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: str
    match: RouteMatch = Field(default_factory=RouteMatch)
    min_severity: Severity | None = None
    # NOTE: like Alertmanager's `continue`: keep looking for further routes after this one matched.
    continue_: bool = Field(default=False, alias="continue")


class Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: SinkType
    url_env: str | None = Field(default=None, description="environment variable holding the URL")
    key_env: str | None = Field(default=None, description="environment variable holding the routing key")


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    receivers: list[Receiver] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default_receiver: str | None = None
    max_attempts: int = 5
    max_backoff_seconds: float = 30.0
    # Once in-line retries are spent the state waits in the outbox, retried by `flush` with backoff
    # up to this interval, for as long as the receiver stays down.
    outbox_max_backoff_seconds: float = 300.0
    # Like Alertmanager's group_wait: the first page of an incident waits until it is this old (on
    # event time), so the fragments a storm opens before correlation can join them (a pod's crash
    # loop before its model's error rate names the model) are folded into their incident first and
    # never paged. Growth after the first page updates it as before. 0 pages at once.
    group_wait_seconds: float = Field(default=10.0, ge=0)

    @field_validator("routes")
    @classmethod
    def _known(cls, v: list[Route], info: Any) -> list[Route]:
        names = {r.name for r in info.data.get("receivers", [])}
        for r in v:
            if r.receiver not in names:
                raise ValueError(f"route names unknown receiver {r.receiver!r}; known: {sorted(names)}")
        return v


def routing_config(section: Any) -> RoutingConfig:
    return RoutingConfig.model_validate(section or {})


def group_wait_of(config: Any, override: float | None) -> float:
    """The group wait in seconds: `override` (Settings.group_wait_seconds, from
    EVENTMGMT_GROUP_WAIT_SECONDS) if set, else the configuration's `routing.group_wait_seconds`, else
    the default. Route and replay both ask here."""
    if override is not None:
        return override
    section = config.section("routing")
    return routing_config(section).group_wait_seconds if section else RoutingConfig().group_wait_seconds
