"""Semantic kind, class and first-guess severity of a parsed event, and the ingest filter."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .config import Config, FilterRule, KindRule
from .model import KIND_CHARS, Event, EventClass, Severity, bounded

# Alertmanager `severity` label values seen across kube-prometheus, DCGM and vendor rules.
_LABEL_SEVERITY = {
    "critical": Severity.critical,
    "page": Severity.critical,
    "error": Severity.high,
    "high": Severity.high,
    "major": Severity.high,
    "warning": Severity.medium,
    "warn": Severity.medium,
    "medium": Severity.medium,
    "minor": Severity.low,
    "low": Severity.low,
    "info": Severity.info,
    "none": Severity.info,
}
_LOG_SEVERITY = {
    "fatal": Severity.critical,
    "critical": Severity.critical,
    "error": Severity.high,
    "warning": Severity.medium,
    "warn": Severity.medium,
}
_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[^A-Za-z0-9]+")


def _snake(name: str) -> str:
    return bounded(_SNAKE.sub("_", name).strip("_").lower() or "unknown", KIND_CHARS)


def _source_severity(ev: Event) -> Severity:
    if ev.source in ("alertmanager", "cloudevent", "collector"):
        return _LABEL_SEVERITY.get(
            ev.labels.get("severity", "").lower(), Severity.medium if ev.source == "alertmanager" else Severity.info
        )
    if ev.source == "log":
        return _LOG_SEVERITY.get(ev.labels.get("level", ""), Severity.info)
    if ev.labels.get("type") == "Warning":
        return Severity.low
    return Severity.info


def _rules_for(config: Config, source: str) -> tuple[list[KindRule], list[FilterRule]]:
    """The kind and filter rules that can match events of `source`, in order (cached on the config).
    Most rules name one source, so this halves classification time."""
    found = config.rules_by_source.get(source)
    if found is None:
        kinds = [r for r in config.kinds if r.when.source is None or r.when.source.fullmatch(source)]
        filters = [r for r in config.filters if r.when.source is None or r.when.source.fullmatch(source)]
        found = config.rules_by_source[source] = (kinds, filters)
    return found


def _heartbeat(ev: Event, config: Config) -> bool:
    """An always-firing alert the user named in the `heartbeats` list of the configuration."""
    if ev.source not in ("alertmanager", "collector", "cloudevent"):
        return False
    section = config.section("heartbeats")
    # NOTE: a list of names, or {names: [...], timeout_minutes: N} (runtime/heartbeats.py)
    names = section.get("names", []) if isinstance(section, dict) else section
    return isinstance(names, list) and ev.signal in names


def classify(ev: Event, config: Config) -> Event:
    """The event with kind, class and severity set by the first matching kind rule.

    Unmatched Alertmanager alerts and CloudEvents that say they are alerts keep their own name as kind
    and page as alerts: an alert someone wrote a rule for is never silently demoted."""
    if _heartbeat(ev, config):
        return ev.model_copy(update={"kind": "watchdog", "cls": EventClass.info, "severity": Severity.info})
    for rule in _rules_for(config, ev.source)[0]:
        if rule.when.matches(ev):
            sev = rule.severity or _source_severity(ev)
            if rule.cls is not EventClass.alert and rule.severity is None:
                sev = Severity.info if rule.cls is EventClass.change else min(sev, Severity.low, key=lambda s: s.rank)
            return ev.model_copy(update={"kind": rule.kind, "cls": rule.cls, "severity": sev})
    if ev.source in ("alertmanager", "collector") or (ev.source == "cloudevent" and ev.labels.get("class") == "alert"):
        return ev.model_copy(
            update={"kind": _snake(ev.signal), "cls": EventClass.alert, "severity": _source_severity(ev)}
        )
    cls = EventClass(ev.labels["class"]) if ev.labels.get("class") in ("change", "info") else EventClass.info
    return ev.model_copy(update={"kind": _snake(ev.signal), "cls": cls, "severity": Severity.info})


def admit(events: Iterable[Event], config: Config) -> tuple[list[Event], Counter[str]]:
    """Classify a delivery's events and drop what the filters name: the events kept, in order, and
    how many each filter dropped. Ingest, replay and the collector all admit events this way."""
    kept: list[Event] = []
    dropped: Counter[str] = Counter()
    for ev in events:
        ev = classify(ev, config)
        reason = filter_reason(ev, config)
        if reason is None:
            kept.append(ev)
        else:
            dropped[reason] += 1
    return kept, dropped


def filter_reason(ev: Event, config: Config) -> str | None:
    """The name of the first filter that drops this event, or None to keep it."""
    for rule in _rules_for(config, ev.source)[1]:
        if rule.when.matches(ev):
            return rule.name
    return None
