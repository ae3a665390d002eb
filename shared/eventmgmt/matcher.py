"""`when:` clauses of the configuration: which events a rule applies to."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .model import Event, EventClass, Severity, Status

_RESOURCE_FIELDS = ("cluster", "namespace", "node", "pod", "container", "deployment", "model", "version", "gpu")
# NOTE: values no real event has; a pattern matching all of them (and "") matches any value.
_PROBES = ("", "x", "\u2400 eventmgmt probe 7f3c \u2400")
_DOMAINS: dict[str, tuple[str, ...]] = {
    "cls": tuple(e.value for e in EventClass),
    "severity": tuple(e.value for e in Severity),
    "status": tuple(e.value for e in Status),
}
# NOTE: fields no event leaves empty (a sender's source, its alert name or reason, the kind, which is
# "unknown" at worst): a pattern matching every non-empty value (`.+`) matches every event.
_NON_EMPTY = ("source", "signal", "kind")


def _compile(v: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(v))
    except re.error as err:
        raise ValueError(f"bad regular expression {v!r}: {err}") from None


def _sources() -> tuple[str, ...]:
    """The sources ingest takes: a pattern matching every one (listed) matches every event received."""
    from .sources import SOURCES  # NOTE: here, not at the top: sources import the matcher

    return tuple(SOURCES)


class Match(BaseModel):
    """All given fields must match. `signal`, `source`, `kind`, `class`, `severity`, `status`, resource
    fields and `labels` values are regular expressions matched in full; `summary` is searched."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    source: re.Pattern[str] | None = None
    signal: re.Pattern[str] | None = None
    kind: re.Pattern[str] | None = None
    cls: re.Pattern[str] | None = Field(default=None, alias="class")
    severity: re.Pattern[str] | None = None
    status: re.Pattern[str] | None = None
    summary: re.Pattern[str] | None = None
    labels: dict[str, re.Pattern[str]] = Field(default_factory=dict)
    resources: dict[str, re.Pattern[str]] = Field(default_factory=dict)

    @field_validator("source", "signal", "kind", "cls", "severity", "status", "summary", mode="before")
    @classmethod
    def _re(cls, v: Any) -> Any:
        return None if v is None else _compile(v)

    @field_validator("labels", "resources", mode="before")
    @classmethod
    def _re_map(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError("expected a mapping of name to regular expression")
        return {str(k): _compile(x) for k, x in v.items()}

    @field_validator("resources")
    @classmethod
    def _known_resources(cls, v: dict[str, re.Pattern[str]]) -> dict[str, re.Pattern[str]]:
        unknown = set(v) - set(_RESOURCE_FIELDS)
        if unknown:
            raise ValueError(f"unknown resource fields {sorted(unknown)}; known: {list(_RESOURCE_FIELDS)}")
        return v

    def patterns(self) -> Iterator[tuple[str, re.Pattern[str]]]:
        """(field path, pattern) of every field given."""
        for name in ("source", "signal", "kind", "cls", "severity", "status", "summary"):
            pat = getattr(self, name)
            if pat is not None:
                yield name, pat
        for name, pat in self.labels.items():
            yield f"labels.{name}", pat
        for name, pat in self.resources.items():
            yield f"resources.{name}", pat

    def matches_everything(self) -> bool:
        """True when no event could fail to match: nothing given, or only patterns like `.*` (or an
        enumeration of every severity) that match any value of their field."""
        for name, pat in self.patterns():
            values = _DOMAINS.get(name) or (_PROBES[1:] if name in _NON_EMPTY else _PROBES)
            if name == "source":
                values = _sources()
            test = pat.search if name == "summary" else pat.fullmatch
            if not all(test(v) for v in values):
                return False
        return True

    @functools.cached_property
    def _given(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        # NOTE: the plain fields given, found once: classification tries every rule on every event.
        return tuple(
            (name, pat)
            for name in ("source", "signal", "kind", "cls", "severity", "status")
            if (pat := getattr(self, name)) is not None
        )

    def matches(self, ev: Event, clip: int | None = None) -> bool:
        """`clip` bounds the characters of each value a pattern sees (and so its running time)."""
        for name, pat in self._given:
            # NOTE: class, severity and status are str enums: matched as their text.
            if not pat.fullmatch(getattr(ev, name)[:clip]):
                return False
        if self.summary is not None and not self.summary.search(ev.summary[:clip]):
            return False
        for name, pat in self.labels.items():
            if not pat.fullmatch(ev.labels.get(name, "")[:clip]):
                return False
        for name, pat in self.resources.items():
            if not pat.fullmatch((getattr(ev.resources, name) or "")[:clip]):
                return False
        return True
