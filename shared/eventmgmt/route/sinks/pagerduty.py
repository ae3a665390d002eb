"""PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)."""

from __future__ import annotations

from ...incident import IncidentSnapshot
from ...model import Severity
from . import Request
from .common import dashboard_link, details

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
_SEVERITY = {
    Severity.critical: "critical",
    Severity.high: "error",
    Severity.medium: "warning",
    Severity.low: "info",
    Severity.info: "info",
}
ACTIONS = {"triggered": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}


def request(snap: IncidentSnapshot, state: str, routing_key: str, url: str, dashboard: str) -> Request:
    """`dedup_key` is the incident id: PagerDuty folds every trigger of one incident into one page."""
    body: dict[str, object] = {"routing_key": routing_key, "event_action": ACTIONS[state], "dedup_key": snap.id}
    if state == "triggered":
        res = snap.resources
        body["payload"] = {
            "summary": snap.title[:1024],
            "source": ", ".join(res.get("nodes", []) or res.get("clusters", []) or ["eventmgmt"])[:255],
            "severity": _SEVERITY[snap.severity],
            "timestamp": snap.opened_at.isoformat(),
            "component": ", ".join(res.get("models", []))[:255] or None,
            "group": ", ".join(res.get("namespaces", []))[:255] or None,
            "class": snap.root_kind,
            "custom_details": details(snap, dashboard),
        }
        links = [{"href": dashboard_link(dashboard, snap), "text": "Incident in eventmgmt"}]
        if snap.runbook:
            links.append({"href": snap.runbook, "text": "Runbook"})
        if snap.source_url:
            links.append({"href": snap.source_url, "text": "Root cause alert in Prometheus"})
        body["links"] = links
    return Request(url or DEFAULT_URL, body, {"Content-Type": "application/json"})
