"""Configuration: YAML validated by pydantic. Defaults live in `defaults.yaml` beside this module."""

from __future__ import annotations

import copy
import functools
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .matcher import Match
from .model import KIND_CHARS, EventClass, Severity
from .regexguard import unsafe_reason

_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(v: Any) -> Any:
    """Prometheus-style durations ("90s", "15m", "1h30m", "30d"); numbers are seconds."""
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return timedelta(seconds=v)
        if isinstance(v, str):
            m = _DURATION.match(v.strip())
            if m and any(m.groupdict().values()):
                g = {k: float(x) if x else 0.0 for k, x in m.groupdict().items()}
                return timedelta(days=g["d"], hours=g["h"], minutes=g["m"], seconds=g["s"])
            raise ValueError(f"bad duration {v[:40]!r}: use forms like 90s, 15m, 1h30m, 30d")
    except OverflowError:
        # NOTE: pydantic turns ValueError into a validation error naming the field; OverflowError
        # ("99999999999999d") would escape it as a crash.
        raise ValueError(f"duration {str(v)[:40]!r} is too long") from None
    return v


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; the message names the setting."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class KindRule(_Strict):
    """Gives matching events a semantic kind and class (first matching rule wins)."""

    kind: str = Field(min_length=1, max_length=KIND_CHARS)
    cls: EventClass = Field(alias="class")
    severity: Severity | None = None
    when: Match


class FilterRule(_Strict):
    """Drops matching events at ingest; `name` is the reason counted."""

    name: str
    when: Match


class Response(_Strict):
    """One row of the response matrix."""

    severity: Severity
    action: str
    runbook: str | None = None


class Persistence(_Strict):
    """A Kubernetes Warning event of `kind` (and of a reason matching `signal`, if given) opens an
    incident only once its Event has repeated `count` times or lasted `for` (first to last seen),
    like Alertmanager's `for`; it joins an open incident at once."""

    kind: str
    signal: str | None = None
    count: int | None = Field(default=None, ge=1)
    for_: Duration | None = Field(default=None, alias="for")

    @model_validator(mode="after")
    def _needs_a_bound(self) -> Persistence:
        if self.count is None and self.for_ is None:
            raise ValueError(f"persistence rule for {self.kind!r} needs `count` or `for` (or both)")
        return self

    @functools.cached_property
    def signal_re(self) -> re.Pattern[str]:
        return re.compile(self.signal or ".*")


class Chain(_Strict):
    """A causal chain: steps in cause-to-symptom order; each step lists kinds of equal rank."""

    name: str
    steps: list[list[str]] = Field(min_length=1)

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, v: Any) -> Any:
        # NOTE: a step may be written as one kind or a list of kinds.
        return [[s] if isinstance(s, str) else s for s in v] if isinstance(v, list) else v

    @functools.cached_property
    def positions(self) -> dict[str, tuple[int, int]]:
        """Each kind's (step, place within the step). Cached: correlation asks at every change."""
        return {k: (i, j) for i, step in enumerate(self.steps) for j, k in enumerate(step)}


class Correlation(_Strict):
    window: Duration = timedelta(minutes=15)
    quiet_period: Duration = timedelta(minutes=10)
    reopen_window: Duration = timedelta(minutes=30)
    recurrence_window: Duration = timedelta(hours=2)
    stale_after: Duration = timedelta(hours=6)
    node_window: Duration = timedelta(minutes=5)
    onset_window: Duration = timedelta(minutes=5)
    join_only: list[str] = Field(default_factory=list)
    persistence: list[Persistence] = Field(default_factory=list)

    def persistence_of(self, kind: str, signal: str) -> Persistence | None:
        """The persistence rule for a Kubernetes Warning event of `kind` and reason `signal`."""
        for rule in self.persistence:
            if rule.kind == kind and (rule.signal is None or rule.signal_re.fullmatch(signal)):
                return rule
        return None


class GuardRailError(ValueError):
    """A maintenance window outside the guard rails; `field` names what to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


_WINDOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class MaintenanceWindow(_Strict):
    """Suppresses paging for matching events while active; `every` repeats it (e.g. weekly).
    `match_all` must be said to silence everything; `force` to exceed the longest window allowed."""

    name: str
    start: datetime
    end: datetime
    every: Duration | None = None
    when: Match = Field(default_factory=Match)
    match_all: bool = False
    force: bool = False

    @model_validator(mode="after")
    def _order(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError(f"maintenance window {self.name!r}: end must be after start")
        if self.every is not None and self.every < self.end - self.start:
            raise ValueError(f"maintenance window {self.name!r}: `every` is shorter than the window")
        return self

    def unsafe_pattern(self) -> str | None:
        """The first matcher pattern that could backtrack for too long on a hostile value."""
        for name, pat in self.when.patterns():
            reason = unsafe_reason(pat.pattern, search=name == "summary")
            if reason:
                return f"{name}: {pat.pattern[:60]!r}: {reason}"
        return None

    def check_guard_rails(self, limits: MaintenanceLimits) -> None:
        """What a window must say to be added (from configuration or at run time): a plain name,
        `match_all` to silence everything, `force` past the longest window, safe patterns."""
        where = f"maintenance window {self.name[:60]!r}"
        if not _WINDOW_NAME.match(self.name):
            raise GuardRailError(
                f"{where}: a name is 1-100 letters, digits, '.', '_' or '-', starting with one of the first two", "name"
            )
        everything = self.when.matches_everything()
        if everything and not self.match_all:
            raise GuardRailError(
                f"{where}: it matches every event; say `match_all: true` to silence everything", "match_all"
            )
        if self.match_all and not everything:
            raise GuardRailError(
                f"{where}: `match_all: true` with a matcher that does not match everything", "match_all"
            )
        length = self.end - self.start
        if length > limits.max_duration and not self.force:
            longest = limits.max_duration.total_seconds() / 3600
            raise GuardRailError(f"{where}: longer than {longest:g} hours (say `force: true` to allow it)", "end")
        if self.every is not None and length * 2 > self.every and not self.force:
            raise GuardRailError(
                f"{where}: active more than half of every period (say `force: true` to allow it)", "every"
            )
        unsafe = self.unsafe_pattern()
        if unsafe:
            raise GuardRailError(f"{where}: {unsafe}", "match")


class MaintenanceLimits(_Strict):
    """Bounds on maintenance windows; a window saying `force: true` may exceed `max_duration`."""

    max_duration: Duration = timedelta(days=7)


class Config(_Strict):
    """The whole configuration. Sections other stages own are kept as validated-later mappings."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    kinds: list[KindRule] = Field(default_factory=list)
    filters: list[FilterRule] = Field(default_factory=list)
    response: dict[str, Response] = Field(default_factory=dict)
    chains: list[Chain] = Field(default_factory=list)
    correlation: Correlation = Field(default_factory=Correlation)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    maintenance_limits: MaintenanceLimits = Field(default_factory=MaintenanceLimits)

    @model_validator(mode="after")
    def _maintenance_guard_rails(self) -> Config:
        for w in self.maintenance:
            w.check_guard_rails(self.maintenance_limits)
        return self

    @functools.cached_property
    def rules_by_source(self) -> dict[str, tuple[list[KindRule], list[FilterRule]]]:
        """Per-source rule lists, filled lazily by classify (the config is immutable, so never stale).
        A cached property, not a private attribute: pydantic serves those through `__getattr__`, a
        cost classification paid twice per event."""
        return {}

    @functools.cached_property
    def chain_kinds(self) -> list[frozenset[str]]:
        """Each chain's kinds, for correlation's compatibility test: built once per configuration,
        not by each correlation transaction (about 1% of a replay)."""
        return [frozenset(k for step in c.steps for k in step) for c in self.chains]

    def section(self, name: str) -> Any:
        """A section another stage validates itself (routes, retention, ...)."""
        return (self.model_extra or {}).get(name)


def _defaults_text() -> str:
    return (Path(__file__).parent / "defaults.yaml").read_text()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Top-level sections of the user file replace the defaults; nested mappings merge."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("response",):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# NOTE: top-level sections other stages validate themselves (route, archive, collector, classify).
OTHER_SECTIONS = ("routing", "retention", "collector", "heartbeats")


def _unknown_sections(data: dict[str, Any]) -> None:
    """A misspelled section (`corelation:`) would be ignored without a word: refuse it, naming the
    section it most likely means."""
    import difflib

    known = {*Config.model_fields, *OTHER_SECTIONS}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"configuration: unknown section {str(key)[:80]!r}{hint} (known: {', '.join(sorted(known))})"
            )


def parse_config(data: dict[str, Any], *, with_defaults: bool = True) -> Config:
    _unknown_sections(data)
    merged = _merge(_defaults(), data) if with_defaults else data
    if "response" in data and with_defaults:
        # NOTE: a user's response rows add to or replace single default rows, not the whole matrix.
        merged["response"] = {**_defaults().get("response", {}), **data["response"]}
    try:
        return Config.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"configuration: {loc}: {first['msg']}") from None


def load_config(path: str | Path | None = None) -> Config:
    """The defaults, overridden by the YAML file at `path` when given."""
    if path is None:
        return default_config()
    try:
        data = read_yaml(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"configuration {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration {path}: expected a mapping at the top level")
    return parse_config(data)


def read_yaml(text: str) -> Any:
    """YAML read by libyaml where PyYAML was built with it (the same safe loader, in C): in pure
    Python the defaults took about ten times as long, at every start."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _defaults() -> Any:
    """The defaults as data, a fresh copy each time (merging changes what it is given)."""
    return copy.deepcopy(_defaults_data())


@lru_cache(maxsize=1)
def _defaults_data() -> Any:
    return read_yaml(_defaults_text())


@lru_cache(maxsize=1)
def default_config() -> Config:
    return parse_config({})
