"""The board's filters: status (open and acknowledged unless asked, so resolved incidents do not
fill it), severity, model and node; what the filter boxes suggest; the links that change one
filter and keep the others."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ..errors import InputError
from ..store import queries
from ..store.db import reader
from ..store.tables import EventRow, IncidentRow

ACTIVE = ("open", "acknowledged")
ALL = "all"
KEYS = ("status", "severity", "model", "node")
MAX_NAME = 253  # NOTE: a Kubernetes name's longest; the events table's model and node columns too


def _choices(values: Iterable[str], known: tuple[str, ...], name: str) -> list[str]:
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise InputError(f"unknown {name} {unknown[0][:50]!r}; one or more of {', '.join(known)}", name)
    return list(dict.fromkeys(chosen))


@dataclass
class Filters:
    """What the board shows. `statuses` and `severities` empty mean any; `given` is the query as
    asked (what links and paging keep)."""

    statuses: list[str]
    severities: list[str]
    model: str | None = None
    node: str | None = None
    given: dict[str, str] = field(default_factory=dict)

    def url(self, **changes: str | None) -> str:
        """The board's query with `changes` (None drops a filter; paging starts over)."""
        query = {k: v for k, v in {**self.given, **changes}.items() if v}
        return "?" + urlencode(query) if query else "?"

    @property
    def status_view(self) -> str:
        """Which status switch is on: "active", "all", or the statuses chosen."""
        if not self.statuses:
            return ALL
        return "active" if set(self.statuses) == set(ACTIVE) else ",".join(self.statuses)


def parse(args: Any) -> Filters:
    """The filters of a board request: `status` one or more of open, acknowledged, resolved (comma
    separated or repeated) or `all`, open and acknowledged when not given; `severity` likewise, any
    when not given; `model` and `node` a name each. An unknown status or severity is a 400."""
    raw_status = [v for v in args.getlist("status") if v.strip()]
    given: dict[str, str] = {}
    if raw_status and ALL in [v.strip() for v in raw_status]:
        statuses: list[str] = []
        given["status"] = ALL
    elif raw_status:
        statuses = _choices(raw_status, queries.INCIDENT_STATUSES, "status")
        given["status"] = ",".join(statuses)
    else:
        statuses = list(ACTIVE)
    severities = _choices(args.getlist("severity"), queries.SEVERITIES, "severity")
    if severities:
        given["severity"] = ",".join(severities)
    names = {}
    for key in ("model", "node"):
        value = (args.get(key) or "").strip()[:MAX_NAME]
        if value:
            names[key] = given[key] = value
    return Filters(statuses, severities, names.get("model"), names.get("node"), given)


def incidents(engine: Engine, f: Filters, limit: int, offset: int) -> dict[str, Any]:
    """One board page as queries.list_incidents answers it (the same order); for a model or node,
    the incidents with a member event naming it."""
    status, severity = ",".join(f.statuses) or None, ",".join(f.severities) or None
    if not (f.model or f.node):
        return queries.list_incidents(engine, status=status, severity=severity, limit=limit, offset=offset)
    where = [IncidentRow.status != "merged"]
    if f.statuses:
        where.append(IncidentRow.status.in_(f.statuses))
    if f.severities:
        where.append(IncidentRow.severity.in_(f.severities))
    for column, value in ((EventRow.model, f.model), (EventRow.node, f.node)):
        if value:
            where.append(IncidentRow.id.in_(select(EventRow.incident_id).where(column == value)))
    order = (IncidentRow.board_rank, IncidentRow.severity_rank.desc(), IncidentRow.opened_at, IncidentRow.id)
    with Session(reader(engine)) as s:
        rows = list(s.scalars(select(IncidentRow).where(*where).order_by(*order).offset(offset).limit(limit + 1)))
        total = s.scalar(select(func.count()).select_from(IncidentRow).where(*where))
    return {
        "incidents": [r.snapshot for r in rows[:limit]],
        "total": total,
        "next": str(offset + limit) if len(rows) > limit else None,
    }


def suggestions(engine: Engine, shown: Iterable[Mapping[str, Any]], most: int = 200) -> dict[str, list[str]]:
    """Models and nodes to offer in the filter boxes: those of the open and acknowledged incidents
    (at most `most` of them) and of the incidents shown."""
    with Session(reader(engine)) as s:
        active = s.scalars(select(IncidentRow.snapshot).where(IncidentRow.board_rank == 0).limit(most)).all()
    found: dict[str, set[str]] = {"models": set(), "nodes": set()}
    for snap in [*active, *shown]:
        res = snap.get("resources") or {}
        for key, names in found.items():
            names.update(str(n) for n in res.get(key) or [])
    return {key: sorted(names)[:most] for key, names in found.items()}
