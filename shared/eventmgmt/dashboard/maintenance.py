"""Maintenance windows changed at run time: the request checked against the guard rails, and every
add, replacement and end logged and archived with who made it (the caller's token or loopback,
never what the request says)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from ..clock import utcnow
from ..config import MaintenanceLimits, MaintenanceWindow, parse_duration
from ..errors import InputError
from ..incident import CorrelatedMessage
from ..logjson import log_json
from ..matcher import Match
from ..model import Event, EventClass, Severity, Status, stable_hash
from ..timeutil import parse_ts
from ..transport import Publisher
from ..transport.messages import publish_messages

log = logging.getLogger("eventmgmt")

RESOURCE_SHORTCUTS = ("node", "namespace", "pod", "model", "deployment")


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false", name)
    return value


def _times(body: dict[str, Any]) -> tuple[datetime, datetime]:
    for need in ("name", "start", "end"):
        if not body.get(need):
            raise InputError(f"{need} is required", need)
    try:
        start, end = parse_ts(str(body["start"])), parse_ts(str(body["end"]))
    except (ValueError, OverflowError):
        start = end = None
    if start is None or end is None:
        raise InputError("start and end must be timestamps (RFC 3339)", "start")
    return start, end


def _matcher(body: dict[str, Any]) -> Match:
    given = body.get("match")
    if given is not None and not isinstance(given, dict):
        raise InputError("match must be an object of field to regular expression", "match")
    match: dict[str, Any] = dict(given or {})
    resources = {k: str(body[k]) for k in RESOURCE_SHORTCUTS if body.get(k)}
    if resources:
        match = {**match, "resources": {**(match.get("resources") or {}), **resources}}
    try:
        return Match.model_validate(match)
    except ValueError as err:
        raise InputError(f"invalid match: {err}", "match") from None


def parse_window(body: Any, limits: MaintenanceLimits) -> tuple[MaintenanceWindow, bool]:
    """The window a request asks for, within the guard rails, and whether it may replace one."""
    if not isinstance(body, dict):
        raise InputError("expected a JSON object", "body")
    start, end = _times(body)
    when = _matcher(body)
    flags = {k: _flag(body, k) for k in ("match_all", "force", "replace")}
    try:
        every = parse_duration(body["every"]) if body.get("every") else None
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid repeat: {err}", "every") from None
    try:
        window = MaintenanceWindow(
            name=str(body["name"]),
            start=start,
            end=end,
            every=every,
            when=when,
            match_all=flags["match_all"],
            force=flags["force"],
        )
        window.check_guard_rails(limits)
    except (ValueError, TypeError) as err:
        raise InputError(f"invalid maintenance window: {err}", getattr(err, "field", "body")) from None
    return window, flags["replace"]


def window_json(w: MaintenanceWindow, by: str) -> dict[str, Any]:
    return {**w.model_dump(mode="json", by_alias=True, exclude_defaults=True), "created_by": by}


def record(
    publisher: Publisher,
    action: str,
    window: dict[str, Any],
    by: str,
    remote: str | None,
    before: dict[str, Any] | None = None,
) -> None:
    """One JSON log line, and a change record on events-correlated for the archive (kept as long as
    change records are: a year by default)."""
    now = utcnow()
    name = str(window.get("name"))
    log_json(
        log, "NOTICE", f"maintenance window {action}", name=name, by=by, remote=remote, window=window, before=before
    )
    details = json.dumps({"window": window, "before": before}, default=str, sort_keys=True)
    event = Event(
        id=f"operator:maintenance:{stable_hash(name, action, now.isoformat(), by, length=24)}",
        fingerprint=f"maintenance:{name}",
        source="operator",
        signal=f"Maintenance{action.capitalize()}",
        kind=f"maintenance_{action}",
        cls=EventClass.change,
        severity=Severity.info,
        status=Status.resolved if action == "ended" else Status.firing,
        occurred_at=now,
        received_at=now,
        labels={"window_name": name, "by": by, "remote": remote or "", "details": details[:16_000]},
        summary=f"{by} {action} maintenance window {name}",
    )
    try:
        publish_messages(publisher, [CorrelatedMessage(event=event)])
    except Exception as err:
        # NOTE: the change is made and logged; the caller must not retry it for the archive's sake.
        log_json(log, "ERROR", "maintenance audit record not archived", name=name, by=by, error=str(err)[:300])
