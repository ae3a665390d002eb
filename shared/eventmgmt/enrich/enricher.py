"""The enrich stage's pure step: topology, response matrix, maintenance."""

from __future__ import annotations

from datetime import datetime

from ..config import Config, MaintenanceWindow
from ..model import Event, EventClass
from ..timeutil import iso
from .maintenance import active_window
from .topology import TopologyGraph, learn_and_fill


def enrich(
    ev: Event,
    config: Config,
    graph: TopologyGraph,
    extra_windows: list[MaintenanceWindow] | None = None,
) -> Event:
    """Fill resources from the graph, apply the response matrix row of the event's kind, and mark the
    event suppressed (with the window's end in `labels.maintenance_until`) if a window covers it."""
    ev = learn_and_fill(graph, ev)
    update: dict[str, object] = {}
    row = config.response.get(ev.kind)
    # NOTE: an alert's own runbook (set by its parser from `runbook_url` or `runbook`) is more specific
    # than the response matrix's for its kind: it wins.
    own = ev.runbook or ev.labels.get("annotation_runbook_url")
    if row is not None and ev.cls is EventClass.alert:
        update.update(severity=row.severity, action=row.action, runbook=own or row.runbook)
    elif own and own != ev.runbook:
        update["runbook"] = own
    if ev.cls is EventClass.alert:
        at: datetime = ev.occurred_at
        hit = active_window([*config.maintenance, *(extra_windows or [])], ev, at)
        if hit is not None:
            name, end = hit
            update["suppressed"] = True
            update["labels"] = {**ev.labels, "maintenance": name, "maintenance_until": iso(end)}
    return ev.model_copy(update=update) if update else ev
