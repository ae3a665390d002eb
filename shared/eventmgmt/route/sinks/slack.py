"""Slack incoming webhook (https://api.slack.com/messaging/webhooks)."""

from __future__ import annotations

from ...incident import IncidentSnapshot
from . import Request
from .common import dashboard_link

_ICON = {
    "triggered": ":rotating_light:",
    "acknowledged": ":eyes:",
    "resolved": ":white_check_mark:",
    "linked": ":gear:",
}


def request(snap: IncidentSnapshot, state: str, url: str, dashboard: str) -> Request:
    root = snap.root_cause
    head = f"{_ICON.get(state, '')} *[{state.upper()}] {snap.severity.value.upper()}* {snap.title}"
    lines = [head, f"*Root cause:* {root.kind}: {root.summary}"]
    if snap.changes:
        lines.append("*Preceded by:* " + "; ".join(c.summary for c in snap.changes[:3]))
    if snap.action:
        lines.append(f"*Action:* {snap.action}")
    links = [f"<{dashboard_link(dashboard, snap)}|Open in eventmgmt>"]
    if snap.runbook:
        links.append(f"<{snap.runbook}|Runbook>")
    if snap.source_url:
        links.append(f"<{snap.source_url}|Source alert>")
    lines.append(" | ".join(links))
    text = "\n".join(lines)
    body = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
    return Request(url, body, {"Content-Type": "application/json"})
