"""Read side of the state store: what the API and the dashboard show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ..errors import InputError
from .db import reader
from .tables import EventRow, IncidentRow

MAX_LIMIT = 500


def _limit(n: int | None, default: int = 100) -> int:
    return max(1, min(default if n is None else int(n), MAX_LIMIT))


def parse_event_cursor(cursor: str) -> tuple[datetime, str]:
    """(occurred_at, id) of the event list's cursor `<occurred_at iso>|<id>`; ValueError if not one."""
    ts, _, eid = cursor.partition("|")
    return datetime.fromisoformat(ts), eid


# NOTE: what a caller may filter on; "merged" incidents are never listed (they live on in another).
INCIDENT_STATUSES = ("open", "acknowledged", "resolved")
SEVERITIES = ("critical", "high", "medium", "low", "info")


def _choices(value: str | None, known: tuple[str, ...], field: str) -> list[str]:
    chosen = [x.strip() for x in value.split(",") if x.strip()] if value else []
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise InputError(f"unknown {field} {unknown[0][:50]!r}; one or more of {', '.join(known)}", field)
    return chosen


def list_incidents(
    engine: Engine,
    *,
    status: str | None = None,
    severity: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    """Open first, by severity then age, from the board index; `offset` is the cursor (`next`).
    `status` and `severity` are one value or several, comma-separated (`open,acknowledged`); `total`
    counts what the filters select."""
    statuses = _choices(status, INCIDENT_STATUSES, "status")
    severities = _choices(severity, SEVERITIES, "severity")
    with Session(reader(engine)) as s:
        where = [IncidentRow.status != "merged"]
        if statuses:
            where.append(IncidentRow.status.in_(statuses))
        if severities:
            where.append(IncidentRow.severity.in_(severities))
        q = select(IncidentRow).where(*where)
        q = q.order_by(
            IncidentRow.board_rank.asc(),
            IncidentRow.severity_rank.desc(),
            IncidentRow.opened_at.asc(),
            IncidentRow.id.asc(),
        )
        lim = _limit(limit)
        rows = list(s.scalars(q.offset(offset).limit(lim + 1)))
        items = [r.snapshot for r in rows[:lim]]
        total = s.scalar(select(func.count()).select_from(IncidentRow).where(*where))
        return {"incidents": items, "total": total, "next": str(offset + lim) if len(rows) > lim else None}


def get_incident(engine: Engine, incident_id: str) -> dict[str, Any] | None:
    with Session(reader(engine)) as s:
        row = s.get(IncidentRow, incident_id)
        if row is None:
            return None
        events = list(
            s.scalars(
                select(EventRow)
                .where(EventRow.incident_id == incident_id)
                .order_by(EventRow.occurred_at, EventRow.id)
                .limit(2000)
            )
        )
        return {**row.snapshot, "events": [e.data for e in events]}


def list_events(
    engine: Engine,
    *,
    kind: str | None = None,
    cls: str | None = None,
    q: str | None = None,
    pod: str | None = None,
    node: str | None = None,
    model: str | None = None,
    incident: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """Newest first; `before` is the cursor `<occurred_at iso>|<id>` from the previous page."""
    with Session(reader(engine)) as s:
        stmt = select(EventRow)
        for col, val in (
            (EventRow.kind, kind),
            (EventRow.cls, cls),
            (EventRow.pod, pod),
            (EventRow.node, node),
            (EventRow.model, model),
            (EventRow.incident_id, incident),
        ):
            if val:
                stmt = stmt.where(col == val)
        if q:
            # NOTE: `q` is text, not a LIKE pattern: `%` and `_` match themselves.
            stmt = stmt.where(EventRow.summary.contains(q, autoescape=True))
        if since:
            stmt = stmt.where(EventRow.occurred_at >= since)
        if before:
            at, eid = parse_event_cursor(before)
            stmt = stmt.where((EventRow.occurred_at < at) | ((EventRow.occurred_at == at) & (EventRow.id < eid)))
        lim = _limit(limit)
        rows = list(s.scalars(stmt.order_by(EventRow.occurred_at.desc(), EventRow.id.desc()).limit(lim + 1)))
        nxt = None
        if len(rows) > lim:
            last = rows[lim - 1]
            nxt = f"{last.occurred_at.isoformat()}|{last.id}"
        return {"events": [r.data | {"incident_id": r.incident_id} for r in rows[:lim]], "next": nxt}
