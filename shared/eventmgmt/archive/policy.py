"""Retention policy: how long each type of record is kept, in which tier, and what is on hold."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import Duration

TYPES = ("alert", "change", "info", "log", "audit", "metric", "incident")


class TypePolicy(BaseModel):
    """`hot` days in the hot tier, then cold until `delete_after` (no cold tier when equal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hot: Duration
    delete_after: Duration

    @model_validator(mode="after")
    def _order(self) -> TypePolicy:
        if self.delete_after < self.hot:
            raise ValueError("delete_after must not be shorter than hot")
        return self


class Hold(BaseModel):
    """Legal hold: partitions of `type` (all types when omitted) whose day is in [start, end] are
    neither moved nor deleted while the hold exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str | None = None
    start: date | None = None
    end: date | None = None

    def covers(self, type_: str, day: date) -> bool:
        return (
            (self.type is None or self.type == type_)
            and (self.start is None or day >= self.start)
            and (self.end is None or day <= self.end)
        )


def _d(days: int) -> timedelta:
    return timedelta(days=days)


DEFAULT_POLICY: dict[str, TypePolicy] = {
    "alert": TypePolicy(hot=_d(90), delete_after=_d(90)),
    "metric": TypePolicy(hot=_d(30), delete_after=_d(30)),
    "log": TypePolicy(hot=_d(30), delete_after=_d(365)),
    "audit": TypePolicy(hot=_d(365), delete_after=_d(365)),
    "incident": TypePolicy(hot=_d(90), delete_after=_d(90)),
    "change": TypePolicy(hot=_d(90), delete_after=_d(365)),
    "info": TypePolicy(hot=_d(30), delete_after=_d(30)),
}


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    types: dict[str, TypePolicy] = Field(default_factory=lambda: dict(DEFAULT_POLICY))
    holds: list[Hold] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> RetentionConfig:
        unknown = set(self.types) - set(TYPES)
        if unknown:
            raise ValueError(f"unknown archive types {sorted(unknown)}; known: {list(TYPES)}")
        return self

    def policy(self, type_: str) -> TypePolicy:
        return self.types.get(type_) or DEFAULT_POLICY[type_]


def retention_config(section: Any) -> RetentionConfig:
    """The `retention:` section; given types override the defaults one by one."""
    section = dict(section or {})
    types = {
        **DEFAULT_POLICY,
        **{k: TypePolicy.model_validate(v) for k, v in (section.pop("types", None) or {}).items()},
    }
    return RetentionConfig.model_validate({"types": types, **section})
