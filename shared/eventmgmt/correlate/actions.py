"""Operator actions on incidents (acknowledge, resolve): state changes through correlation, in its
transaction and on its lifecycle, so an action cannot race an event joining the incident."""

from __future__ import annotations

from datetime import datetime

from ..errors import InputError
from ..incident import CorrelatedMessage, IncidentAction, IncidentStatus
from ..model import Event, EventClass, Severity, Status
from .engine import Correlator


def set_status(
    correlator: Correlator, incident_id: str, status: IncidentStatus, by: str, now: datetime
) -> CorrelatedMessage:
    """Acknowledge or resolve `incident_id` as `by`; 404 if there is none, 409 if it was merged or
    already has that status. The message tells route and archive."""
    inc = correlator.repo.get(incident_id)
    if inc is None:
        raise InputError(f"no incident {incident_id!r}", field="id", status=404)
    if inc.merged_into:
        raise InputError(f"incident {incident_id} was merged into {inc.merged_into}", field="id", status=409)
    if inc.status is status:
        raise InputError(f"incident {incident_id} is already {status.value}", field="status", status=409)
    if status is IncidentStatus.acknowledged and inc.status is IncidentStatus.resolved:
        raise InputError(f"incident {incident_id} is resolved; nothing to acknowledge", field="status", status=409)
    inc.status = status
    if status is IncidentStatus.acknowledged:
        inc.acknowledged_by = by
    else:
        inc.resolved_at = now
    inc.version += 1
    correlator.repo.save(inc, correlator.next_check(inc))
    action = IncidentAction.acknowledged if status is IncidentStatus.acknowledged else IncidentAction.resolved
    return CorrelatedMessage(
        event=_operator_event(inc.id, inc.version, action.value, by, now),
        incident_id=inc.id,
        action=action,
        incident=inc.snapshot(correlator.chains, correlator.config.response),
    )


def _operator_event(incident_id: str, version: int, action: str, by: str, now: datetime) -> Event:
    return Event(
        id=f"operator:{incident_id}:{version}:{action}",
        fingerprint=f"incident:{incident_id}",
        source="operator",
        signal=f"Incident{action.capitalize()}",
        kind=f"incident_{action}",
        cls=EventClass.info,
        severity=Severity.info,
        status=Status.resolved if action == "resolved" else Status.firing,
        occurred_at=now,
        received_at=now,
        summary=f"{by} {action} incident {incident_id}",
    )
