"""What every notification says: title, severity, root cause, action, runbook, where to look."""

from __future__ import annotations

from typing import Any

from ...incident import IncidentSnapshot


def dashboard_link(base: str, snap: IncidentSnapshot) -> str:
    return f"{base.rstrip('/')}/incidents/{snap.id}"


def details(snap: IncidentSnapshot, dashboard: str) -> dict[str, Any]:
    root = snap.root_cause
    return {
        "incident_id": snap.id,
        "title": snap.title,
        "severity": snap.severity.value,
        "status": snap.status.value,
        "chain": snap.chain,
        "root_cause": {"kind": root.kind, "summary": root.summary, "at": root.occurred_at.isoformat()},
        "action": snap.action,
        "runbook": snap.runbook,
        "source_url": snap.source_url,
        "resources": snap.resources,
        "members": snap.member_count,
        "firing": snap.firing,
        "changes": [{"kind": c.kind, "summary": c.summary, "at": c.occurred_at.isoformat()} for c in snap.changes],
        "dashboard": dashboard_link(dashboard, snap),
    }
