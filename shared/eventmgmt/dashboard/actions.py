"""Operator actions on incidents: acknowledge and resolve, through the correlation state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from ..config import Config
from ..correlate.sqlrepo import SqlRepo, locked_session
from ..errors import InputError
from ..incident import CorrelatedMessage, IncidentAction, IncidentStatus
from ..model import Event, EventClass, Severity, Status
from ..transport import Publisher
from ..transport.messages import publish_messages


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


def set_status(
    engine: Engine,
    config: Config,
    publisher: Publisher,
    incident_id: str,
    status: IncidentStatus,
    by: str,
    now: datetime,
) -> CorrelatedMessage:
    """Acknowledge or resolve in one correlate transaction (so it cannot race an event joining the
    incident), then tell route and archive through events-correlated."""
    with locked_session(engine) as session:
        repo = SqlRepo(session, config.chains, config.response)
        inc = repo.get(incident_id)
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
        due = (
            inc.resolved_at + config.correlation.recurrence_window
            if inc.resolved_at
            else inc.last_seen + config.correlation.quiet_period
        )
        repo.save(inc, due)
        repo.finish()
        action = IncidentAction.acknowledged if status is IncidentStatus.acknowledged else IncidentAction.resolved
        msg = CorrelatedMessage(
            event=_operator_event(inc.id, inc.version, action.value, by, now),
            incident_id=inc.id,
            action=action,
            incident=inc.snapshot(config.chains, config.response),
        )
    publish_messages(publisher, [msg])
    return msg
