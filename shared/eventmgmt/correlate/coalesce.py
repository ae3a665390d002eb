"""One delivery's correlated messages, as route and archive should see them.

A storm webhook of 100 alerts used to publish 100 snapshots of the same incident, and an incident
opened for one pod and folded into its model's incident a few alerts later was paged, then merged.
After a delivery is correlated, each incident it touched is announced once, as it stands at the end
of the delivery; an incident that was opened and merged away within the delivery is never announced.
Every event keeps its own message (archive stores each one)."""

from __future__ import annotations

from collections.abc import Callable

from ..incident import CorrelatedMessage, IncidentAction, IncidentSnapshot

# NOTE: what a delivery did to an incident, strongest first: a page is owed for an opening even when
# later events of the same delivery only updated it.
_STRENGTH = [IncidentAction.opened, IncidentAction.reopened, IncidentAction.merged, IncidentAction.resolved]


def coalesce(
    messages: list[CorrelatedMessage],
    snapshot: Callable[[str], IncidentSnapshot] | None = None,
    merged_into: Callable[[str], str | None] | None = None,
) -> list[CorrelatedMessage]:
    """`snapshot(id)` gives the final snapshot of an incident whose messages carry an action but no
    snapshot (a lazy correlator's); `merged_into(id)`, where an incident went, without building the
    snapshot of each fragment a storm folds away."""

    def snap_of(m: CorrelatedMessage) -> IncidentSnapshot | None:
        if m.incident is not None or m.incident_id is None or m.action is None or snapshot is None:
            return m.incident
        return snapshot(m.incident_id)

    into = merged_into
    merged_to: dict[str, str] = {}
    opened_here: set[str] = set()
    actions: dict[str, set[IncidentAction]] = {}
    last: dict[str, int] = {}
    for i, m in enumerate(messages):
        if m.incident_id is None or (m.incident is None and m.action is None):
            continue
        last[m.incident_id] = i
        if m.action is not None:
            actions.setdefault(m.incident_id, set()).add(m.action)
            if m.action is IncidentAction.opened:
                opened_here.add(m.incident_id)
        if m.action is IncidentAction.merged:
            if m.incident is None and into is not None:
                target = into(m.incident_id)
            else:
                merged = snap_of(m)
                target = merged.merged_into if merged is not None else None
            if target:
                merged_to[m.incident_id] = target
    vanished = {iid for iid in merged_to if iid in opened_here}
    out = []
    for i, m in enumerate(messages):
        iid = m.incident_id
        if iid is None:
            out.append(m)
            continue
        final = _follow(iid, merged_to) if iid in vanished else iid
        if iid in vanished or last.get(iid) != i:
            out.append(m.model_copy(update={"incident_id": final, "incident": None, "action": None}))
            continue
        done = actions.get(iid, set())
        action = next((a for a in _STRENGTH if a in done), m.action)
        snap = snap_of(m)
        out.append(
            m
            if action is m.action and snap is m.incident
            else m.model_copy(update={"action": action, "incident": snap})
        )
    return out


def _follow(iid: str, merged_into: dict[str, str]) -> str:
    seen = {iid}
    while iid in merged_into and merged_into[iid] not in seen:
        iid = merged_into[iid]
        seen.add(iid)
    return iid
