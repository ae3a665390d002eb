"""Wire-format parsers: one module per source, each a pure mapping to unclassified events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import InputError
from ..model import Event
from . import alertmanager, cloudevent, fluentbit, k8s_audit, k8s_event
from .base import Checked, ParseContext, Parsed, Rejection

Parser = Callable[[Any, ParseContext], Parsed]

PARSERS: dict[str, Parser] = {
    "alertmanager": alertmanager.parse,
    "k8s-event": k8s_event.parse_core,
    "k8s-event-v1": k8s_event.parse_v1,
    "k8s-audit": k8s_audit.parse,
    "log": fluentbit.parse,
    "cloudevent": cloudevent.parse,
}
SOURCES = tuple(PARSERS)


# Sources whose deliveries can be checked without building their events (the storm sources): ingest
# answers once such a delivery is checked and queued, and its events are built behind it. A check
# refuses exactly the records its parser refuses.
class Checker(NamedTuple):
    check: Callable[[Any, ParseContext], Checked]
    records: str  # the body's field holding the list of records


CHECKERS: dict[str, Checker] = {"alertmanager": Checker(alertmanager.check, "alerts")}
# The keys a Fluent Bit record keeps its text under: tail (`log`), the CRI parser (`message`),
# Merge_Log (`msg`, `message`), the systemd input (`MESSAGE`).
_LOG_TEXT = frozenset(("log", "message", "msg", "MESSAGE"))


def _alerts(alerts: Any) -> bool:
    """Alertmanager's alerts as a relay that trims the webhook's envelope sends them (no `version`,
    `groupKey` or `receiver`): a list of objects, each with its `labels`."""
    return isinstance(alerts, list) and bool(alerts) and all(isinstance(a, dict) and "labels" in a for a in alerts)


def detect(body: Any, headers: Mapping[str, str] | None = None) -> str:
    """Which source a payload is, from its shape; InputError when nothing fits."""
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if "ce-specversion" in h or h.get("content-type", "").startswith("application/cloudevents"):
        return "cloudevent"
    if isinstance(body, list):
        if body and all(isinstance(r, dict) and "specversion" in r for r in body):
            return "cloudevent"
        if body and all(isinstance(r, dict) and _LOG_TEXT.intersection(r) for r in body):
            return "log"
    elif isinstance(body, dict):
        if "alerts" in body and (
            "version" in body or "groupKey" in body or "receiver" in body or _alerts(body["alerts"])
        ):
            return "alertmanager"
        if body.get("kind") == "EventList" and str(body.get("apiVersion", "")).startswith("audit.k8s.io"):
            return "k8s-audit"
        if str(body.get("apiVersion", "")).startswith("events.k8s.io") or "regarding" in body:
            return "k8s-event-v1"
        if "involvedObject" in body:
            return "k8s-event"
        if "specversion" in body:
            return "cloudevent"
        if "log" in body or "MESSAGE" in body or ("kubernetes" in body and ("message" in body or "msg" in body)):
            return "log"
    raise InputError(
        "cannot tell the source of this payload; post it to /ingest/{source} with one of: " + ", ".join(SOURCES),
        field="body",
        status=422,
    )


def parse_delivery(source: str, body: Any, ctx: ParseContext, headers: Mapping[str, str] | None = None) -> Parsed:
    """Parse one delivery of `source`: the events of its good records and a Rejection for each bad
    one. Raises InputError (never anything else) when the delivery as a whole is unusable: an unknown
    source, or an envelope that does not fit the format."""
    parser = PARSERS.get(source)
    if parser is None:
        raise InputError(f"unknown source {source!r}; known: {', '.join(SOURCES)}", field="source", status=404)
    if source == "cloudevent" and headers is not None and any(k.lower() == "ce-specversion" for k in headers):
        body = cloudevent.from_binary(headers, body)
    try:
        return parser(body, ctx)
    except InputError:
        raise
    except (ValueError, TypeError, OverflowError, OSError) as err:
        # NOTE: timestamps and numbers are parsed after validation; their errors are still bad input.
        raise InputError(f"{source}: {err}", field="body") from None


def check_delivery(source: str, body: Any, ctx: ParseContext) -> Checked | None:
    """What parse_delivery would accept and refuse, for a source with a check (None otherwise)."""
    checker = CHECKERS.get(source)
    if checker is None:
        return None
    try:
        return checker.check(body, ctx)
    except InputError:
        raise
    except (ValueError, TypeError, OverflowError, OSError) as err:
        raise InputError(f"{source}: {err}", field="body") from None


def parse(source: str, body: Any, ctx: ParseContext, headers: Mapping[str, str] | None = None) -> list[Event]:
    """The events of a delivery's good records, as ingest accepts them (bad records are left out);
    InputError naming the first problem when no record is good."""
    parsed = parse_delivery(source, body, ctx, headers)
    if parsed.rejected and not parsed.events:
        first = parsed.rejected[0]
        raise InputError(first.error, field=first.field, status=first.status)
    return parsed.events


__all__ = [
    "CHECKERS",
    "PARSERS",
    "SOURCES",
    "Checked",
    "Checker",
    "ParseContext",
    "Parsed",
    "Rejection",
    "check_delivery",
    "detect",
    "parse",
    "parse_delivery",
]
